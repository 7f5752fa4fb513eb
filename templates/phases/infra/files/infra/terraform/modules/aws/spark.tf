# The Spark job host of the data pipeline (data.engine: spark): an EMR Serverless application in
# the private subnets (no standing cluster: it starts on a job and stops when idle), the job
# execution role, the bucket holding the job's artifacts (bundle + entry file) and its log group.
# ci/submit-spark.sh uploads the artifacts and starts the job run.
variable "spark_release_label" {
  description = "EMR Serverless release of the Spark application: emr-spark-8.0.0 = Spark 4.0 with Python 3.11-3.13 (emr-7.x runs Python 3.9, older than the project's)."
  type        = string
  default     = "emr-spark-8.0.0"
}

variable "spark_max_cpu" {
  description = "Maximum vCPUs the Spark application may use across its workers."
  type        = string
  default     = "64 vCPU"
}

variable "spark_max_memory" {
  description = "Maximum memory the Spark application may use across its workers."
  type        = string
  default     = "256 GB"
}

variable "spark_idle_minutes" {
  description = "Minutes without a job after which the Spark application stops."
  type        = number
  default     = 15
}

module "spark_artifacts" {
  source = "./bucket"

  name                    = "${local.name}-spark-${local.account}"
  kms_key_arn             = aws_kms_key.this.arn
  log_bucket              = aws_s3_bucket.logs.id
  noncurrent_version_days = 30
  tags                    = merge(local.tags, { layer = "spark-artifacts" })
}

resource "aws_cloudwatch_log_group" "spark" {
  name              = "/emr-serverless/${local.name}/spark"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_security_group" "spark" {
  #checkov:skip=CKV2_AWS_5:Attached through the EMR Serverless application's network_configuration, a resource type this graph check does not know.
  name        = "${local.name}-spark"
  description = "EMR Serverless Spark workers: each other, the VPC endpoints and S3 only"
  vpc_id      = aws_vpc.this.id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "spark_self" {
  #checkov:skip=CKV_AWS_24:The only source is this security group itself (the job's own workers), never 0.0.0.0/0; Spark uses ephemeral ports.
  #checkov:skip=CKV_AWS_25:The only source is this security group itself (the job's own workers), never 0.0.0.0/0; Spark uses ephemeral ports.
  #checkov:skip=CKV_AWS_260:The only source is this security group itself (the job's own workers), never 0.0.0.0/0; Spark uses ephemeral ports.
  security_group_id            = aws_security_group.spark.id
  description                  = "Spark driver and executors talk to each other"
  referenced_security_group_id = aws_security_group.spark.id
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
}

resource "aws_vpc_security_group_egress_rule" "spark_self" {
  security_group_id            = aws_security_group.spark.id
  description                  = "Spark driver and executors talk to each other"
  referenced_security_group_id = aws_security_group.spark.id
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
}

resource "aws_vpc_security_group_egress_rule" "spark_endpoints" {
  security_group_id            = aws_security_group.spark.id
  description                  = "HTTPS to the VPC interface endpoints (CloudWatch Logs)"
  referenced_security_group_id = aws_security_group.endpoints.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "spark_s3" {
  security_group_id = aws_security_group.spark.id
  description       = "HTTPS to S3 (the lake and the artifacts) through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_emrserverless_application" "spark" {
  name          = "${local.name}-spark"
  release_label = var.spark_release_label
  type          = "spark"
  architecture  = "X86_64"
  tags          = local.tags

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.spark_idle_minutes
  }

  maximum_capacity {
    cpu    = var.spark_max_cpu
    memory = var.spark_max_memory
  }

  network_configuration {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.spark.id]
  }
}

data "aws_iam_policy_document" "spark_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:emr-serverless:${var.region}:${local.account}:/applications/*"]
    }
  }
}

# job execution role: what the pipeline itself may do, nothing more
resource "aws_iam_role" "spark" {
  name               = "${local.name}-spark-job"
  assume_role_policy = data.aws_iam_policy_document.spark_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "spark" {
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [for layer in local.layers : module.layer[layer].arn]
  }

  # bronze is append-only: ingest adds partitions, nothing is overwritten or deleted
  statement {
    sid       = "ReadAppendBronze"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${module.layer["bronze"].arn}/*"]
  }

  statement {
    sid     = "WriteSilverGold"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      "${module.layer["silver"].arn}/*",
      "${module.layer["gold"].arn}/*",
    ]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [module.spark_artifacts.arn, "${module.spark_artifacts.arn}/*"]
  }

  statement {
    sid       = "LakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.spark.arn, "${aws_cloudwatch_log_group.spark.arn}:*"]
  }

  statement {
    sid       = "FindLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "spark" {
  name   = "data-pipeline"
  role   = aws_iam_role.spark.id
  policy = data.aws_iam_policy_document.spark.json
}

output "spark_application_id" {
  description = "EMR Serverless application running the data pipeline (CI variable SPARK_APPLICATION_ID)."
  value       = aws_emrserverless_application.spark.id
}

output "spark_role_arn" {
  description = "Execution role of the Spark job runs (CI variable SPARK_ROLE_ARN)."
  value       = aws_iam_role.spark.arn
}

output "spark_artifacts" {
  description = "Where ci/submit-spark.sh uploads the job bundle and entry file (CI variable SPARK_ARTIFACTS)."
  value       = "s3://${module.spark_artifacts.name}/jobs"
}

output "spark_log_group" {
  description = "CloudWatch log group of the Spark job runs (CI variable SPARK_LOG_GROUP)."
  value       = aws_cloudwatch_log_group.spark.name
}

output "spark_lake_urls" {
  description = "Storage URL per data layer, passed to the job as MLOPS_LAKE_<LAYER> (CI variable SPARK_LAKE_URLS, as JSON)."
  value       = { for layer in local.layers : layer => "s3://${module.layer[layer].name}" }
}
