# The rotation state machine (STANDARD: exactly-once, 90-day history) from
# statemachine/rotation.asl.json with the six function ARNs filled in. Its role may invoke these
# six functions and, when a secret declares consumers (rotor:consumers), redeploy exactly those
# ECS services (ecs:UpdateService, ecs:DescribeServices through the AWS SDK integrations);
# nothing else. Logs carry no execution data (inputs hold KMS ciphertext and ids only, but
# history stays the one place to read them), history and definition are encrypted with the
# deployment's key, and X-Ray traces every execution.

resource "aws_cloudwatch_log_group" "state_machine" {
  # /aws/vendedlogs/: the prefix AWS recommends for log delivery (keeps the logs resource policy small).
  name              = "/aws/vendedlogs/states/${local.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

locals {
  # Step Functions sends the state machine's ARN as aws:SourceArn when it assumes the role
  # (AWS's confused-deputy guidance for Step Functions): each role trusts its one state machine.
  states_assume_role_policies = {
    for name, arn in { rotation = local.state_machine_arn, age_check = local.age_check_arn } : name => {
      Version                   = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "states.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = arn }
        }
      }]
    }
  }

  # Log delivery (CreateLogDelivery & co.) and X-Ray have no resource-level permissions: AWS
  # documents Resource "*" for a state machine's logging and tracing.
  statement_states_log_delivery = {
    Sid    = "DeliverLogsToCloudWatch"
    Effect = "Allow"
    Action = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    Resource = "*"
  }
  statement_states_tracing = {
    Sid      = "WriteTraces"
    Effect   = "Allow"
    Action   = ["xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    Resource = "*"
  }

  # The consumers: an ECS task reads secrets[].valueFrom only when it starts, so after Promote
  # the state machine itself (its role, not a function's) forces a new deployment of each
  # service a secret names in rotor:consumers (aws-sdk:ecs:updateService, ForceNewDeployment)
  # and polls it (aws-sdk:ecs:describeServices) until the rollout completes. Both actions have
  # resource-level permissions on the service ARN (long format, which names the cluster): the
  # union of the declared services exactly, never "*", and no statement at all when no secret
  # declares one. Same task definition, so no iam:PassRole. Adding a consumer changes this
  # policy and the boundary: an administrator's apply (deploy.tf).
  statement_states_consumers = length(local.consumer_service_arns) == 0 ? [] : [{
    Sid      = "RedeployTheDeclaredConsumerServicesOnly"
    Effect   = "Allow"
    Action   = ["ecs:DescribeServices", "ecs:UpdateService"]
    Resource = local.consumer_service_arns
  }]

  state_machine_policy = {
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "InvokeTheSixRotorFunctionsOnly"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [for f in local.function_names : local.function_arns[f]]
      },
      {
        # The definition and history are encrypted with the deployment's key.
        Sid      = "UseTheKeyForThisStateMachinesDataOnly"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringEquals = { "kms:EncryptionContext:aws:states:stateMachineArn" = local.state_machine_arn }
        }
      },
      local.statement_states_log_delivery,
      local.statement_states_tracing,
    ], local.statement_states_consumers)
  }

  state_machine_definition = templatefile(local.definition_file, {
    for f in local.function_names : "${replace(f, "-", "_")}_arn" => local.function_arns[f]
  })
}

resource "aws_iam_role" "state_machine" {
  name                 = "${local.prefix}-rotation-sfn"
  description          = "rotor ${var.environment}: the rotation state machine (invokes the six functions, redeploys the declared consumer services; nothing else)"
  assume_role_policy   = jsonencode(local.states_assume_role_policies["rotation"])
  permissions_boundary = aws_iam_policy.boundary.arn
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "rotation-least-privilege"
  role   = aws_iam_role.state_machine.id
  policy = jsonencode(local.state_machine_policy)

  lifecycle {
    # The tag names the services (ecs:<cluster>/<service>), which Step Functions looks up in
    # its own account: a service ARN of another account would be granted and never redeployed.
    precondition {
      condition     = alltrue([for a in local.consumer_service_arns : split(":", a)[1] == local.partition && split(":", a)[4] == local.account_id])
      error_message = "Every consumer must be an ECS service of this account (${local.account_id}, partition ${local.partition}): ${join(", ", [for a in local.consumer_service_arns : a if split(":", a)[1] != local.partition || split(":", a)[4] != local.account_id])}."
    }
  }
}

resource "aws_sfn_state_machine" "rotation" {
  #checkov:skip=CKV_AWS_285:Execution data stays out of the logs on purpose (include_execution_data = false, as rotor's design requires): the history, encrypted with the key and readable only with states:GetExecutionHistory, keeps it; logging is on at level ALL.
  name       = local.state_machine_name
  type       = "STANDARD"
  role_arn   = aws_iam_role.state_machine.arn
  definition = local.state_machine_definition
  tags       = local.tags

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = false
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.this.arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [
    aws_iam_role_policy.state_machine,
    aws_lambda_function.this,
  ]

  lifecycle {
    precondition {
      condition     = alltrue([for f in local.function_names : strcontains(local.state_machine_definition, local.function_arns[f])])
      error_message = "${local.definition_file} does not name every function: it must use $${stage_pending_arn}, $${health_probe_arn}, $${promote_arn}, $${revoke_old_iam_key_arn}, $${rollback_arn} and $${audit_log_arn}."
    }
  }
}
