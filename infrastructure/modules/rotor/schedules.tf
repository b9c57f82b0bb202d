# Schedules (EventBridge Scheduler, one per secret that has a `schedule`):
# - generated and iam-access-key secrets: start the rotation state machine with
#   {"action": "rotate", "secret_id": <name>, "requested_by": "schedule:...", "reason": ...}.
# - vendor-api-key secrets (a person brings the candidate): start the age check, a small state
#   machine of AWS SDK tasks that reads when AWSCURRENT was created and puts the metric
#   Rotor/SecretAgeDays (dimension SecretId); the age alarm (alarms.tf) fires past max_age_days.

resource "aws_scheduler_schedule_group" "this" {
  name = local.prefix
  tags = local.tags
}

locals {
  scheduler_assume_role_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule/${local.prefix}/*" }
      }
    }]
  }

  scheduled_state_machine_arns = concat(
    length(local.rotation_schedules) > 0 ? [local.state_machine_arn] : [],
    length(local.age_check_schedules) > 0 ? [local.age_check_arn] : [],
  )

  scheduler_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "StartTheScheduledStateMachines"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = local.scheduled_state_machine_arns
      },
      {
        # StartExecution on a state machine encrypted with the key, and the schedules' own
        # encrypted input.
        Sid      = "UseTheKeyForTheScheduledStateMachinesAndSchedules"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringEquals = {
            "kms:EncryptionContext:aws:states:stateMachineArn" = local.scheduled_state_machine_arns
          }
        }
      },
      {
        Sid      = "DecryptTheSchedulesInput"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringLike = {
            "kms:EncryptionContext:aws:scheduler:schedule-arn" = "arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule/${local.prefix}/*"
          }
        }
      },
    ]
  }

  # The age check: JSONata, AWS SDK integrations only (no function, no secret value read).
  age_check_definition = {
    Comment       = "rotor: put Rotor/SecretAgeDays (dimension SecretId) for one vendor-api-key secret: days since its AWSCURRENT version was created. Input: {\"secret_id\": <name>}."
    QueryLanguage = "JSONata"
    StartAt       = "ListVersions"
    States = {
      ListVersions = {
        Type      = "Task"
        Resource  = "arn:aws:states:::aws-sdk:secretsmanager:listSecretVersionIds"
        Arguments = { SecretId = "{% $states.input.secret_id %}" }
        Output = {
          secret_id = "{% $states.input.secret_id %}"
          created   = "{% $states.result.Versions['AWSCURRENT' in VersionStages].CreatedDate %}"
        }
        Retry = [{
          ErrorEquals     = ["States.ALL"]
          IntervalSeconds = 5
          MaxAttempts     = 3
          BackoffRate     = 2
          JitterStrategy  = "FULL"
        }]
        Next = "PutAge"
      }
      PutAge = {
        Type     = "Task"
        Resource = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
        Arguments = {
          Namespace = local.metric_namespace
          MetricData = [{
            MetricName = "SecretAgeDays"
            Unit       = "None"
            Value      = "{% $floor(($toMillis($states.context.Execution.StartTime) - ($type($states.input.created) = 'number' ? $states.input.created * 1000 : $toMillis($states.input.created))) / 86400000) %}"
            Dimensions = [{ Name = "SecretId", Value = "{% $states.input.secret_id %}" }]
          }]
        }
        Retry = [{
          ErrorEquals     = ["States.ALL"]
          IntervalSeconds = 5
          MaxAttempts     = 3
          BackoffRate     = 2
          JitterStrategy  = "FULL"
        }]
        End = true
      }
    }
  }

  age_check_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ListTheVersionsOfTheScheduledVendorSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:ListSecretVersionIds"]
        Resource = [for k in sort(keys(local.age_check_schedules)) : aws_secretsmanager_secret.this[k].arn]
      },
      {
        # PutMetricData has no resource-level permissions: Resource "*", bounded to rotor's namespace.
        Sid       = "PutRotorMetrics"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = "*"
        Condition = { StringEquals = { "cloudwatch:namespace" = local.metric_namespace } }
      },
      {
        Sid      = "UseTheKeyForThisStateMachinesDataOnly"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringEquals = { "kms:EncryptionContext:aws:states:stateMachineArn" = local.age_check_arn }
        }
      },
      local.statement_states_log_delivery,
      local.statement_states_tracing,
    ]
  }
}

resource "aws_iam_role" "scheduler" {
  count = length(local.scheduled_state_machine_arns) > 0 ? 1 : 0

  name                 = "${local.prefix}-scheduler"
  description          = "rotor ${var.environment}: EventBridge Scheduler starting rotations and age checks"
  assume_role_policy   = jsonencode(local.scheduler_assume_role_policy)
  permissions_boundary = aws_iam_policy.boundary.arn
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(aws_iam_role.scheduler)

  name   = "start-executions-least-privilege"
  role   = aws_iam_role.scheduler[0].id
  policy = jsonencode(local.scheduler_policy)
}

resource "aws_cloudwatch_log_group" "age_check" {
  count = length(local.age_check_schedules) > 0 ? 1 : 0

  name              = "/aws/vendedlogs/states/${local.age_check_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_iam_role" "age_check" {
  count = length(local.age_check_schedules) > 0 ? 1 : 0

  name                 = "${local.prefix}-age-check-sfn"
  description          = "rotor ${var.environment}: the age check state machine (lists versions, puts SecretAgeDays)"
  assume_role_policy   = jsonencode(local.states_assume_role_policies["age_check"])
  permissions_boundary = aws_iam_policy.boundary.arn
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "age_check" {
  count = length(aws_iam_role.age_check)

  name   = "age-check-least-privilege"
  role   = aws_iam_role.age_check[0].id
  policy = jsonencode(local.age_check_policy)
}

resource "aws_sfn_state_machine" "age_check" {
  #checkov:skip=CKV_AWS_285:Execution data stays out of the logs on purpose (include_execution_data = false, like the rotation state machine): the encrypted history keeps it; errors are logged.
  count = length(local.age_check_schedules) > 0 ? 1 : 0

  name       = local.age_check_name
  type       = "STANDARD"
  role_arn   = aws_iam_role.age_check[0].arn
  definition = jsonencode(local.age_check_definition)
  tags       = local.tags

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.age_check[0].arn}:*"
    include_execution_data = false
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.this.arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [aws_iam_role_policy.age_check]
}

resource "aws_scheduler_schedule" "rotation" {
  for_each = local.rotation_schedules

  name                         = "rotate-${each.key}"
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = "rotor ${var.environment}: rotate ${each.value.name} (${each.value.kind})"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.rotation.arn
    role_arn = aws_iam_role.scheduler[0].arn
    input = jsonencode({
      action       = "rotate"
      secret_id    = each.value.name
      requested_by = "schedule:${local.prefix}/rotate-${each.key}"
      reason       = "scheduled rotation (${each.value.schedule})"
    })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}

resource "aws_scheduler_schedule" "age_check" {
  for_each = local.age_check_schedules

  name                         = "age-check-${each.key}"
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = "rotor ${var.environment}: age check of ${each.value.name} (vendor-api-key; rotate it with a new key from the vendor)"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.age_check[0].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode({ secret_id = each.value.name })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
