# One role per function, each allowed exactly the calls its code makes (crates/core handlers
# through crates/aws), on exactly the resources it touches:
#
#   stage-pending       secretsmanager DescribeSecret, ListSecretVersionIds, GetSecretValue,
#                       PutSecretValue; kms:Decrypt of the candidate (encryption context
#                       SecretId = a managed secret); IAM ListAccessKeys, CreateAccessKey,
#                       DeleteAccessKey, GetAccessKeyLastUsed (an Active key no version holds
#                       is deleted only if it was never used) on the iam-access-key users
#   health-probe        DescribeSecret, ListSecretVersionIds, GetSecretValue
#   promote             DescribeSecret, ListSecretVersionIds, UpdateSecretVersionStage
#   rollback            DescribeSecret, ListSecretVersionIds, GetSecretValue (an IAM key
#                       version names the key to delete or check), UpdateSecretVersionStage;
#                       IAM ListAccessKeys, UpdateAccessKey, DeleteAccessKey. No PutSecretValue:
#                       a rollback only moves labels.
#   revoke-old-iam-key  DescribeSecret, ListSecretVersionIds (is AWSCURRENT still this
#                       rotation's?); IAM ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
#                       GetAccessKeyLastUsed on the iam-access-key users
#   audit-log           cloudwatch:PutMetricData in the namespace Rotor
#
# (Secrets Manager calls as the AWS adapter makes them: its `describe` is DescribeSecret plus
# ListSecretVersionIds.) Reading or writing a secret value also uses the KMS key through Secrets Manager (GetSecretValue:
# kms:Decrypt, PutSecretValue: kms:GenerateDataKey), allowed only via Secrets Manager and only for
# these secrets' encryption context. Every function writes its own log group and X-Ray traces
# (xray:PutTraceSegments/PutTelemetryRecords have no resource-level permissions: Resource "*").
# sts:GetCallerIdentity (health-probe of IAM keys) needs no permission.
#
# No function calls ECS: redeploying a secret's consumers (rotor:consumers) is the state
# machine's own AWS SDK integration, so ecs:UpdateService/DescribeServices are its role's, on
# exactly the declared services (stepfunctions.tf). What the applications may read is
# consumer.tf's (one policy per entry of var.applications).

locals {
  # A candidate's encryption context (rotor_core::candidate): exactly these keys, Execution and
  # NotAfter present, so a ciphertext without a deadline can be neither made nor opened.
  candidate_context_keys = ["Execution", "NotAfter", "SecretId"]
  candidate_context_present = {
    "kms:EncryptionContext:Execution" = "false"
    "kms:EncryptionContext:NotAfter"  = "false"
  }

  # aws:SourceAccount only: AWS documents aws:SourceArn for Lambda where a function is the
  # target of a call (its resource policy), not in an execution role's trust; a condition key
  # Lambda does not send would make every function unable to run, and no offline test can
  # show which. The role is confined to its function by name, PassRole (deploy.tf: only
  # ci-deploy passes it, only to lambda.amazonaws.com) and the boundary.
  lambda_assume_role_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  }

  has_iam_users = length(local.iam_user_arns) > 0

  statement_secrets_via_kms_decrypt = {
    Sid      = "DecryptSecretValuesThroughSecretsManager"
    Effect   = "Allow"
    Action   = ["kms:Decrypt"]
    Resource = local.kms_key_arns
    Condition = {
      StringEquals = {
        "kms:ViaService"                  = local.secrets_manager_endpoints
        "kms:EncryptionContext:SecretARN" = local.secret_arns_all_regions
      }
    }
  }
  statement_secrets_via_kms_encrypt = {
    Sid      = "EncryptNewSecretValuesThroughSecretsManager"
    Effect   = "Allow"
    Action   = ["kms:GenerateDataKey"]
    Resource = local.kms_key_arns
    Condition = {
      StringEquals = {
        "kms:ViaService"                  = local.secrets_manager_endpoints
        "kms:EncryptionContext:SecretARN" = local.secret_arns_all_regions
      }
    }
  }

  function_statements = {
    "stage-pending" = concat(
      [
        {
          Sid      = "ReadAndStageTheManagedSecrets"
          Effect   = "Allow"
          Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds", "secretsmanager:PutSecretValue"]
          Resource = local.secret_arns
        },
        {
          # The candidate: KMS ciphertext made by `rotor rotate`, `rotor encrypt` or ci-rotate
          # under the encryption context {"SecretId": <secret name>, "Execution": <name>,
          # "NotAfter": <time>} of one of these secrets (sealed to one execution and a deadline,
          # which stage-pending checks), and nothing else.
          Sid      = "DecryptCandidatesForTheManagedSecretsOnly"
          Effect   = "Allow"
          Action   = ["kms:Decrypt"]
          Resource = [aws_kms_key.this.arn]
          Condition = {
            StringEquals                = { "kms:EncryptionContext:SecretId" = local.secret_names }
            "ForAllValues:StringEquals" = { "kms:EncryptionContextKeys" = local.candidate_context_keys }
            "Null"                      = merge(local.candidate_context_present, { "kms:ViaService" = "true" })
          }
        },
        local.statement_secrets_via_kms_decrypt,
        local.statement_secrets_via_kms_encrypt,
      ],
      local.has_iam_users ? [{
        Sid      = "CreateTheNewAccessKeyOfTheManagedUsers"
        Effect   = "Allow"
        Action   = ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys"]
        Resource = local.iam_user_arns
      }] : [],
    )
    "health-probe" = [
      {
        Sid      = "ReadTheManagedSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"]
        Resource = local.secret_arns
      },
      local.statement_secrets_via_kms_decrypt,
    ]
    "promote" = [
      {
        Sid      = "MoveTheLabelsOfTheManagedSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds", "secretsmanager:UpdateSecretVersionStage"]
        Resource = local.secret_arns
      },
    ]
    "rollback" = concat(
      [
        {
          Sid      = "RevertTheManagedSecrets"
          Effect   = "Allow"
          Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds", "secretsmanager:UpdateSecretVersionStage"]
          Resource = local.secret_arns
        },
        local.statement_secrets_via_kms_decrypt,
      ],
      local.has_iam_users ? [{
        Sid      = "RestoreTheAccessKeysOfTheManagedUsers"
        Effect   = "Allow"
        Action   = ["iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"]
        Resource = local.iam_user_arns
      }] : [],
    )
    "revoke-old-iam-key" = concat(
      [
        {
          Sid      = "CheckTheLabelsOfTheManagedSecrets"
          Effect   = "Allow"
          Action   = ["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
          Resource = local.secret_arns
        },
      ],
      local.has_iam_users ? [{
        Sid      = "RetireTheOldAccessKeysOfTheManagedUsers"
        Effect   = "Allow"
        Action   = ["iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"]
        Resource = local.iam_user_arns
      }] : [],
    )
    "audit-log" = [
      {
        # PutMetricData has no resource-level permissions: Resource "*", bounded to rotor's namespace.
        Sid       = "PutRotorMetrics"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = "*"
        Condition = { StringEquals = { "cloudwatch:namespace" = local.metric_namespace } }
      },
    ]
  }

  function_policies = {
    for f in local.function_names : f => {
      Version = "2012-10-17"
      Statement = concat(local.function_statements[f], [
        {
          Sid      = "WriteOwnLogGroup"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = ["${local.function_log_group_arns[f]}:log-stream:*"]
        },
        {
          # X-Ray has no resource-level permissions.
          Sid      = "WriteTraces"
          Effect   = "Allow"
          Action   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
          Resource = "*"
        },
      ], local.in_vpc_statements)
    }
  }

  # In the VPC (subnet_ids): what Lambda needs of the execution role to attach the function's
  # network interfaces (AWS's AWSLambdaVPCAccessExecutionRole). Lambda calls these as the role,
  # on interfaces it creates; DescribeNetworkInterfaces has no resource-level permissions, and
  # the interfaces do not exist before the call, so the resource is "*" (the boundary caps ec2
  # at these actions).
  in_vpc_statements = length(var.subnet_ids) == 0 ? [] : [
    {
      Sid      = "AttachTheFunctionToTheVpc"
      Effect   = "Allow"
      Action   = ["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"]
      Resource = "*"
    },
  ]
}

resource "aws_iam_role" "function" {
  for_each = local.function_full_names

  name                 = each.value
  description          = "rotor ${var.environment}: execution role of the ${each.key} function only"
  assume_role_policy   = jsonencode(local.lambda_assume_role_policy)
  permissions_boundary = aws_iam_policy.boundary.arn
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_full_names

  name   = "${each.key}-least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = jsonencode(local.function_policies[each.key])
}
