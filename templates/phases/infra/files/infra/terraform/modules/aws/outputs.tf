output "data_buckets" {
  description = "S3 bucket per data layer (bronze, silver, gold)."
  value       = { for layer, bucket in module.layer : layer => bucket.name }
}

output "kms_key_arn" {
  description = "KMS key encrypting data, images and logs."
  value       = aws_kms_key.this.arn
}

output "registry_url" {
  description = "ECR repository URL of the model API image."
  value       = aws_ecr_repository.api.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running the model API."
  value       = aws_ecs_cluster.this.name
}

output "api_name" {
  description = "ECS service of the model API."
  value       = aws_ecs_service.api.name
}

output "api_url" {
  description = "HTTPS URL of the model API (point your DNS name at the load balancer)."
  value       = "https://${aws_lb.api.dns_name}"
}

output "log_group_name" {
  description = "CloudWatch log group of the model API."
  value       = aws_cloudwatch_log_group.api.name
}
