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
