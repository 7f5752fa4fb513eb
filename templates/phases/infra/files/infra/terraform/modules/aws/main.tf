# The environment's whole stack: KMS, data lake buckets (bronze/silver/gold), ECR, a private VPC,
# the model API on ECS Fargate behind an HTTPS load balancer with WAF, and CloudWatch.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# two pinned zones: the stack never spreads silently into a zone added later
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = ["${var.region}a", "${var.region}b"]
  }
}

locals {
  name    = "${var.project}-${var.environment}"
  account = data.aws_caller_identity.current.account_id
  layers  = toset(["bronze", "silver", "gold"])
  azs     = slice(data.aws_availability_zones.available.names, 0, 2)
  tags    = merge(var.tags, { environment = var.environment })
}

resource "aws_kms_key" "this" {
  description             = "${local.name}: data lake, images and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a key policy: "*" is the key itself and the account root delegates to IAM, as AWS requires.
  #checkov:skip=CKV_AWS_111:This is a key policy: "*" is the key itself; write access is constrained by IAM and the logs condition.
  #checkov:skip=CKV_AWS_356:This is a key policy: "*" is the only valid resource and means this key.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account}:*"]
    }
  }
}
