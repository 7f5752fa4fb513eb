# Batch scoring (serving.mode: batch) as a scheduled ECS Fargate task instead of an API service:
# EventBridge runs the batch image (`python -m <package>.serving.job`) on var.score_schedule. The
# job reads gold/features.parquet and writes gold/predictions/predictions-<time>.parquet.
# The schedule runs the latest ACTIVE revision of the task family: the deploy pipeline registers a
# revision with each new image, so re-run it after a terraform change to the task definition.
variable "score_schedule" {
  description = "When the batch scoring job runs: an EventBridge schedule expression (UTC)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

resource "aws_cloudwatch_log_group" "score" {
  name              = "/ecs/${local.name}/score"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "this" {
  name = local.name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# execution role: pull the image and write logs, nothing else
resource "aws_iam_role" "execution" {
  name               = "${local.name}-score-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.api.arn]
  }

  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # the action supports no resource-level permissions
  }

  statement {
    sid       = "DecryptImage"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.score.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# task role: what the job itself may do - read gold, write gold/predictions/, nothing more
resource "aws_iam_role" "task" {
  name               = "${local.name}-score-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ReadGold"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [module.layer["gold"].arn, "${module.layer["gold"].arn}/*"]
  }

  statement {
    sid       = "WritePredictions"
    actions   = ["s3:PutObject"]
    resources = ["${module.layer["gold"].arn}/predictions/*"]
  }

  statement {
    sid       = "EncryptGold"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "score-gold"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

resource "aws_ecs_task_definition" "score" {
  family                   = "${local.name}-score"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 4096
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = local.tags

  # the job's scratch space (download, predictions before upload): the root filesystem is read-only
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "score"
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    environment = [
      { name = "MLOPS_ENV", value = var.environment },
      { name = "SCORE_INPUT_URL", value = "s3://${module.layer["gold"].name}/features.parquet" },
      { name = "SCORE_OUTPUT_URL", value = "s3://${module.layer["gold"].name}/predictions" },
    ]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.score.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "score"
      }
    }
  }])
}

resource "aws_security_group" "score" {
  name        = "${local.name}-score"
  description = "Batch scoring tasks: no inbound traffic, HTTPS out to the VPC endpoints and S3"
  vpc_id      = aws_vpc.this.id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "score_https" {
  security_group_id = aws_security_group.score.id
  description       = "HTTPS to the VPC endpoints (ECR, CloudWatch Logs)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "score_s3" {
  security_group_id = aws_security_group.score.id
  description       = "HTTPS to S3 through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# EventBridge may run the scoring task on this cluster and hand it its two roles
data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.name}-score-schedule"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "RunScoring"
    actions   = ["ecs:RunTask"]
    resources = ["${aws_ecs_task_definition.score.arn_without_revision}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "run-scoring"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

resource "aws_cloudwatch_event_rule" "score" {
  name                = "${local.name}-score"
  description         = "Runs the batch scoring job of ${local.name}"
  schedule_expression = var.score_schedule
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "score" {
  rule     = aws_cloudwatch_event_rule.score.name
  arn      = aws_ecs_cluster.this.arn
  role_arn = aws_iam_role.events.arn

  ecs_target {
    # no revision: the latest ACTIVE one, i.e. the image the deploy pipeline registered last
    task_definition_arn = aws_ecs_task_definition.score.arn_without_revision
    launch_type         = "FARGATE"
    task_count          = 1

    network_configuration {
      subnets          = aws_subnet.private[*].id
      security_groups  = [aws_security_group.score.id]
      assign_public_ip = false
    }
  }
}

output "ecs_cluster_name" {
  description = "ECS cluster running the batch scoring job."
  value       = aws_ecs_cluster.this.name
}

output "job_name" {
  description = "Task definition family of the batch scoring job (CI variable JOB_NAME)."
  value       = aws_ecs_task_definition.score.family
}

output "log_group_name" {
  description = "CloudWatch log group of the batch scoring job."
  value       = aws_cloudwatch_log_group.score.name
}
