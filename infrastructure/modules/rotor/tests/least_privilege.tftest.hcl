# Least privilege and the shape of the deployment, checked offline with a mocked AWS provider.
# Run (tests/terraform.rs does, with placeholder zips):
#   terraform init && terraform test -var lambda_zip_dir=<folder with the six zips>

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/terraform"
      user_id    = "AIDAMOCKMOCKMOCKMOCK"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition          = "aws"
      dns_suffix         = "amazonaws.com"
      reverse_dns_prefix = "com.amazonaws"
    }
  }
  mock_data "aws_region" {
    defaults = {
      name        = "us-east-1"
      endpoint    = "ec2.us-east-1.amazonaws.com"
      description = "US East (N. Virginia)"
    }
  }
  # Computed ARNs need ARN-shaped values (random strings are not ARNs).
  mock_resource "aws_kms_key" {
    defaults = {
      arn    = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
      key_id = "mrk-0123456789abcdef0123456789abcdef"
    }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/mock-AbCdEf"
      id  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/mock-AbCdEf"
    }
  }
  mock_resource "aws_lambda_function" {
    defaults = {
      arn           = "arn:aws:lambda:us-east-1:123456789012:function:rotor-test-mock"
      invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:rotor-test-mock/invocations"
      qualified_arn = "arn:aws:lambda:us-east-1:123456789012:function:rotor-test-mock:1"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/rotor-test-mock"
    }
  }
  mock_resource "aws_iam_policy" {
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/rotor-test-mock"
    }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/rotor-test-mock"
    }
  }
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:us-east-1:123456789012:rotor-test-alarms"
    }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = {
      arn = "arn:aws:states:us-east-1:123456789012:stateMachine:rotor-test-rotation"
    }
  }
  mock_resource "aws_scheduler_schedule_group" {
    defaults = {
      arn = "arn:aws:scheduler:us-east-1:123456789012:schedule-group/rotor-test"
    }
  }
  mock_resource "aws_scheduler_schedule" {
    defaults = {
      arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/rotor-test/mock"
    }
  }
  mock_resource "aws_cloudtrail" {
    defaults = {
      arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/rotor-test-audit"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::rotor-test-audit-trail-123456789012"
      id  = "rotor-test-audit-trail-123456789012"
    }
  }
  mock_resource "aws_cloudwatch_metric_alarm" {
    defaults = {
      arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:rotor-test-mock"
    }
  }
}

# ci-rotate's ARN, distinct from the mocked ARN every other role gets: what ci-deploy must never pass.
override_resource {
  target = aws_iam_role.ci_rotate
  values = { arn = "arn:aws:iam::123456789012:role/rotor-test-ci-rotate" }
}

variables {
  environment        = "test"
  regions            = ["us-east-1", "us-west-2"]
  github_repository  = "example-org/rotor"
  github_environment = "production"
  replica_kms_key_arns = {
    "us-west-2" = "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
  }
  secrets = {
    openai = {
      name           = "rotor-test/openai_api_key"
      kind           = "vendor-api-key"
      probe          = "openai"
      app_health_url = "https://app.example.com/health"
      schedule       = "rate(7 days)"
      # A consumer: every check below covers the state machine's ECS grant too.
      consumers = ["arn:aws:ecs:us-east-1:123456789012:service/prod/backend"]
    }
    session = {
      name     = "rotor-test/session_signing_key"
      kind     = "generated"
      length   = 64
      schedule = "rate(30 days)"
    }
    deployer = {
      name             = "rotor-test/deployer_access_key"
      kind             = "iam-access-key"
      iam_user         = "deployer"
      iam_user_path    = "/ci/"
      iam_probe_action = "iam:GetUser"
      schedule         = "rate(30 days)"
    }
  }
  # An application's read policy: every check over output.iam_policies covers it (app-backend).
  applications = {
    backend = { secrets = ["openai", "session"] }
  }
}

run "every_policy_is_least_privilege" {
  command = apply

  # No wildcard action anywhere ("*", "s3:*", "kms:Get*").
  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : [for a in flatten([s.Action]) : !strcontains(a, "*")]
      ]
    ]))
    error_message = "An IAM policy grants a wildcard action."
  }

  # Resource "*" only for the actions AWS gives no resource-level permission: X-Ray, log
  # delivery, PutMetricData (bounded to the Rotor namespace).
  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : [
          for a in flatten([s.Action]) : contains([
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
            "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
            "cloudwatch:PutMetricData", "kms:ListAliases", "states:ValidateStateMachineDefinition",
            "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe",
          ], a)
        ] if contains(flatten([s.Resource]), "*")
      ]
    ]))
    error_message = "A policy uses Resource \"*\" for an action that supports resource-level permissions."
  }

  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : try(s.Condition.StringEquals["cloudwatch:namespace"], "") == "Rotor"
        if contains(flatten([s.Action]), "cloudwatch:PutMetricData")
      ]
    ]))
    error_message = "cloudwatch:PutMetricData without the Rotor namespace condition."
  }

  # Every use of the KMS key (a cryptographic operation or a grant) that an identity policy
  # allows is bounded by a condition. (ci-plan and ci-deploy also read the key's metadata.)
  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : can(s.Condition)
        if s.Effect == "Allow" && anytrue([for a in flatten([s.Action]) : contains([
          "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
          "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant",
        ], a)])
      ]
    ]))
    error_message = "A policy allows a KMS operation without a condition."
  }

  # Each function's actions are exactly the calls its code makes.
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["stage-pending"]).Statement : s.Action]))) == sort([
      "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds", "secretsmanager:PutSecretValue",
      "kms:Decrypt", "kms:GenerateDataKey",
      "iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "stage-pending's actions are not exactly its list."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["health-probe"]).Statement : s.Action]))) == sort([
      "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
      "kms:Decrypt",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "health-probe's actions are not exactly its list."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["promote"]).Statement : s.Action]))) == sort([
      "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds", "secretsmanager:UpdateSecretVersionStage",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "promote's actions are not exactly its list."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["rollback"]).Statement : s.Action]))) == sort([
      "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds", "secretsmanager:UpdateSecretVersionStage",
      "kms:Decrypt",
      "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "rollback's actions are not exactly its list."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["revoke-old-iam-key"]).Statement : s.Action]))) == sort([
      "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds",
      "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "revoke-old-iam-key's actions are not exactly its list."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["audit-log"]).Statement : s.Action]))) == sort([
      "cloudwatch:PutMetricData",
      "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    ])
    error_message = "audit-log's actions are not exactly its list."
  }

  # Only stage-pending writes secret values (rollback may by the design, but only moves labels).
  assert {
    condition = [
      for name, p in output.iam_policies : name
      if contains(flatten([for s in jsondecode(p).Statement : s.Action]), "secretsmanager:PutSecretValue")
    ] == ["stage-pending"]
    error_message = "A role other than stage-pending may PutSecretValue."
  }

  # Only stage-pending decrypts candidates, and only under a managed secret's encryption context.
  assert {
    condition = [
      for name, p in output.iam_policies : name
      if anytrue([for s in jsondecode(p).Statement : contains(flatten([s.Action]), "kms:Decrypt") && can(s.Condition.StringEquals["kms:EncryptionContext:SecretId"])])
    ] == ["stage-pending"]
    error_message = "A role other than stage-pending may decrypt a candidate."
  }
  assert {
    condition = [
      for s in jsondecode(output.iam_policies["stage-pending"]).Statement : sort(s.Condition.StringEquals["kms:EncryptionContext:SecretId"])
      if can(s.Condition.StringEquals["kms:EncryptionContext:SecretId"])
    ] == [tolist(["rotor-test/deployer_access_key", "rotor-test/openai_api_key", "rotor-test/session_signing_key"])]
    error_message = "stage-pending's candidate decrypt is not bound to the managed secrets' names."
  }
  # A candidate is sealed to one execution and a deadline: the decrypt (stage-pending) and the
  # encrypt (ci-rotate) both require exactly that context.
  assert {
    condition = alltrue([
      for s in concat(jsondecode(output.iam_policies["stage-pending"]).Statement, jsondecode(output.iam_policies["ci-rotate"]).Statement) :
      s.Condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] == ["Execution", "NotAfter", "SecretId"]
      && s.Condition["Null"]["kms:EncryptionContext:Execution"] == "false"
      && s.Condition["Null"]["kms:EncryptionContext:NotAfter"] == "false"
      if can(s.Condition.StringEquals["kms:EncryptionContext:SecretId"])
    ])
    error_message = "A candidate's encrypt or decrypt does not require its Execution and NotAfter."
  }

  # Only stage-pending, rollback and revoke-old-iam-key touch IAM keys, of the named users only;
  # only ci-plan and ci-deploy (Terraform) have any other IAM permission.
  assert {
    condition = sort([
      for name, p in output.iam_policies : name
      if anytrue([for s in jsondecode(p).Statement : anytrue([for a in flatten([s.Action]) : startswith(a, "iam:") && strcontains(a, "AccessKey")])])
    ]) == tolist(["revoke-old-iam-key", "rollback", "stage-pending"])
    error_message = "A role other than stage-pending, rollback and revoke-old-iam-key may touch IAM access keys."
  }
  assert {
    condition = sort([
      for name, p in output.iam_policies : name
      if anytrue([for s in jsondecode(p).Statement : anytrue([for a in flatten([s.Action]) : startswith(a, "iam:") && !strcontains(a, "AccessKey")])])
    ]) == tolist(["ci-deploy", "ci-plan"])
    error_message = "A role other than ci-plan and ci-deploy has IAM permissions beyond access keys."
  }
  assert {
    condition = alltrue(flatten([
      for name in ["stage-pending", "rollback", "revoke-old-iam-key"] : [
        for s in jsondecode(output.iam_policies[name]).Statement : flatten([s.Resource]) == ["arn:aws:iam::123456789012:user/ci/deployer"]
        if anytrue([for a in flatten([s.Action]) : startswith(a, "iam:")])
      ]
    ]))
    error_message = "IAM key permissions reach beyond the iam-access-key users."
  }

  # Each function writes only its own log group.
  assert {
    condition = alltrue([
      for f in ["stage-pending", "health-probe", "promote", "revoke-old-iam-key", "rollback", "audit-log"] : [
        for s in jsondecode(output.iam_policies[f]).Statement : s.Resource if contains(flatten([s.Action]), "logs:PutLogEvents")
      ] == [["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/rotor-test-${f}:log-stream:*"]]
    ])
    error_message = "A function may write a log group other than its own."
  }

  # One role per function.
  assert {
    condition     = length(distinct([for f, fn in aws_lambda_function.this : fn.role])) == 6 || length(aws_iam_role.function) == 6
    error_message = "The functions do not have one role each."
  }
}

run "state_machine_invokes_only_the_six_functions" {
  command = apply

  assert {
    condition = sort([
      for s in jsondecode(output.iam_policies["rotation-sfn"]).Statement : flatten([s.Action])
      ][0]) == tolist(["lambda:InvokeFunction"]) && sort(jsondecode(output.iam_policies["rotation-sfn"]).Statement[0].Resource) == sort([
      for f in ["stage-pending", "health-probe", "promote", "revoke-old-iam-key", "rollback", "audit-log"] : "arn:aws:lambda:us-east-1:123456789012:function:rotor-test-${f}"
    ])
    error_message = "The state machine's role may invoke something other than the six functions."
  }
  assert {
    condition = length([
      for s in jsondecode(output.iam_policies["rotation-sfn"]).Statement : s if contains(flatten([s.Action]), "lambda:InvokeFunction")
    ]) == 1
    error_message = "lambda:InvokeFunction is granted by more than one statement."
  }
  assert {
    condition     = aws_sfn_state_machine.rotation.type == "STANDARD"
    error_message = "The rotation state machine must be STANDARD."
  }
  assert {
    condition     = aws_sfn_state_machine.rotation.logging_configuration[0].include_execution_data == false
    error_message = "State machine logs must not include execution data."
  }
  assert {
    condition     = aws_sfn_state_machine.rotation.tracing_configuration[0].enabled
    error_message = "X-Ray tracing of the state machine is off."
  }
  assert {
    condition = (aws_sfn_state_machine.rotation.encryption_configuration[0].type == "CUSTOMER_MANAGED_KMS_KEY"
    && aws_sfn_state_machine.rotation.encryption_configuration[0].kms_key_id == aws_kms_key.this.arn)
    error_message = "The state machine is not encrypted with the deployment's key."
  }
  assert {
    condition = alltrue([
      for f in ["stage-pending", "health-probe", "promote", "revoke-old-iam-key", "rollback", "audit-log"] :
      strcontains(aws_sfn_state_machine.rotation.definition, "\"arn:aws:lambda:us-east-1:123456789012:function:rotor-test-${f}\"")
    ]) && !strcontains(aws_sfn_state_machine.rotation.definition, "$${")
    error_message = "The definition does not name the six function ARNs (or keeps a placeholder)."
  }
}

run "functions_logs_and_secrets" {
  command = apply

  assert {
    condition = alltrue([
      for f, fn in aws_lambda_function.this :
      fn.runtime == "provided.al2023" && fn.handler == "bootstrap" && one(fn.architectures) == "arm64"
      && fn.reserved_concurrent_executions == 5 && fn.tracing_config[0].mode == "Active"
      && fn.kms_key_arn == aws_kms_key.this.arn
      && fn.environment[0].variables.ROTOR_BACKEND == "aws" && fn.environment[0].variables.ROTOR_KMS_KEY_ID == aws_kms_key.this.arn
    ]) && length(aws_lambda_function.this) == 6
    error_message = "The six functions are not provided.al2023/arm64 with reserved concurrency, X-Ray and the AWS backend."
  }
  assert {
    condition = alltrue([
      for g in concat(values(aws_cloudwatch_log_group.function), [aws_cloudwatch_log_group.state_machine]) :
      g.retention_in_days == 365 && g.kms_key_id == aws_kms_key.this.arn
    ])
    error_message = "A log group has no retention or is not encrypted with the key."
  }
  assert {
    condition     = aws_kms_key.this.multi_region && aws_kms_key.this.enable_key_rotation
    error_message = "The KMS key must be a multi-Region key with rotation."
  }
  # The key policy: kms:* for the account root's IAM delegation statement only, no other wildcard.
  assert {
    condition = [
      for s in jsondecode(aws_kms_key.this.policy).Statement : s.Principal
      if anytrue([for a in flatten([s.Action]) : strcontains(a, "*")])
    ] == [{ AWS = "arn:aws:iam::123456789012:root" }]
    error_message = "The key policy grants a wildcard action to someone other than the account root."
  }
  assert {
    condition = (aws_secretsmanager_secret.this["openai"].tags["rotor:kind"] == "vendor-api-key"
      && aws_secretsmanager_secret.this["openai"].tags["rotor:probe"] == "openai"
      && aws_secretsmanager_secret.this["openai"].tags["rotor:app-health-url"] == "https://app.example.com/health"
      && aws_secretsmanager_secret.this["session"].tags["rotor:length"] == "64"
      && aws_secretsmanager_secret.this["deployer"].tags["rotor:iam-probe-action"] == "iam:GetUser"
    && aws_secretsmanager_secret.this["deployer"].tags["rotor:iam-user"] == "deployer")
    error_message = "The secrets do not carry their rotor:* policy tags."
  }
  assert {
    condition = alltrue([
      for k, s in aws_secretsmanager_secret.this :
      s.kms_key_id == aws_kms_key.this.arn && [for r in s.replica : r.region] == ["us-west-2"]
      && [for r in s.replica : r.kms_key_id] == ["arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"]
    ])
    error_message = "A secret is not encrypted with the key or not replicated to us-west-2 with the replica key."
  }
  assert {
    condition     = alltrue([for k, v in aws_secretsmanager_secret_version.bootstrap : v.version_stages == toset(["rotor-bootstrap"])])
    error_message = "The bootstrap versions must carry only the rotor-bootstrap label."
  }
  assert {
    condition     = aws_sns_topic.alarms.kms_master_key_id == aws_kms_key.this.arn
    error_message = "The alarm topic is not encrypted with the key."
  }
}

run "schedules_and_ci_roles" {
  command = apply

  assert {
    condition     = keys(aws_scheduler_schedule.rotation) == ["deployer", "session"] && keys(aws_scheduler_schedule.age_check) == ["openai"]
    error_message = "generated and iam-access-key secrets must rotate on schedule; vendor-api-key secrets get the age check."
  }
  assert {
    condition = jsondecode(aws_scheduler_schedule.rotation["session"].target[0].input) == {
      action       = "rotate"
      secret_id    = "rotor-test/session_signing_key"
      requested_by = "schedule:rotor-test/rotate-session"
      reason       = "scheduled rotation (rate(30 days))"
    }
    error_message = "A rotation schedule does not start the state machine with that secret's input."
  }
  assert {
    condition     = length(aws_sfn_state_machine.age_check) == 1 && length(aws_cloudwatch_metric_alarm.secret_age) == 1 && length(aws_cloudwatch_metric_alarm.rotation_failed) == 3
    error_message = "Missing age check or alarms."
  }
  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["ci-rotate"]).Statement : s.Action]))) == sort([
      "states:StartExecution", "states:DescribeExecution", "states:GetExecutionHistory",
      "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",
      "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds",
    ])
    error_message = "ci-rotate's actions are not exactly its list (the reads rotor start makes, never GetSecretValue)."
  }
  # ci-rotate can never read a secret: no Secrets Manager action, and its key use is bound to
  # the candidates' encryption (Encrypt) or the state machine's own data.
  assert {
    condition = alltrue([
      for s in jsondecode(output.iam_policies["ci-rotate"]).Statement :
      contains(flatten([s.Action]), "kms:Encrypt") ? (flatten([s.Action]) == ["kms:Encrypt"] && can(s.Condition.StringEquals["kms:EncryptionContext:SecretId"])) :
      flatten([s.Action]) == ["kms:DescribeKey"] ? true :
      alltrue([for a in flatten([s.Action]) : contains(["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"], a)]) ? true :
      anytrue([for a in flatten([s.Action]) : startswith(a, "kms:")]) ? s.Condition.StringEquals["kms:EncryptionContext:aws:states:stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:rotor-test-rotation" :
      alltrue([for a in flatten([s.Action]) : startswith(a, "states:")])
    ])
    error_message = "ci-rotate may do more than start rotations and encrypt candidates."
  }
  # ci-rotate and ci-deploy trust different subjects: one token never opens both.
  assert {
    condition = alltrue([
      for r, env in { (aws_iam_role.ci_rotate.assume_role_policy) = "production", (aws_iam_role.ci_deploy.assume_role_policy) = "production-deploy" } :
      jsondecode(r).Statement[0].Condition.StringEquals == {
        "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
        "token.actions.githubusercontent.com:sub" = "repo:example-org/rotor:environment:${env}"
      } && length(jsondecode(r).Statement) == 1
    ])
    error_message = "ci-rotate must trust the environment only, ci-deploy its deploy environment only."
  }
  assert {
    condition = (sort(distinct(flatten([for s in jsondecode(output.application_policy_json["backend"]).Statement : s.Action]))) == tolist(["kms:Decrypt", "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"])
    && jsondecode(output.application_policy_json["backend"]).Statement[0].Condition.StringEquals["aws:ResourceAccount"] == "123456789012")
    error_message = "An application's read policy must be GetSecretValue/DescribeSecret, same account (and kms:Decrypt)."
  }
}

run "terraform_from_ci_plan_and_ci_deploy" {
  command = apply


  variables {
    terraform_state_bucket = "example-terraform-state"
    terraform_state_key    = "rotor/production.tfstate"
  }

  # ci-plan: pull requests of the repository only; ci-deploy: the protected environment only.
  assert {
    condition = jsondecode(aws_iam_role.ci_plan.assume_role_policy).Statement[0].Condition.StringEquals == {
      "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
      "token.actions.githubusercontent.com:sub" = "repo:example-org/rotor:pull_request"
    } && length(jsondecode(aws_iam_role.ci_plan.assume_role_policy).Statement) == 1
    error_message = "ci-plan must trust only the repository's pull requests."
  }
  assert {
    condition = (join(",", sort(keys(aws_iam_role_policy_attachment.ci_deploy))) == "ci-deploy,ci-deploy-account,ci-plan,ci-plan-account"
      && join(",", sort(keys(aws_iam_role_policy_attachment.ci_plan))) == "ci-plan,ci-plan-account"
      && alltrue([for a in aws_iam_role_policy_attachment.ci_plan : a.role == aws_iam_role.ci_plan.name])
    && alltrue([for a in aws_iam_role_policy_attachment.ci_deploy : a.role == aws_iam_role.ci_deploy.name]))
    error_message = "ci-deploy has the read and the write policy; ci-plan the read policy."
  }

  # ci-plan only reads: Get/List/Describe, the definition check, and decrypting through
  # Step Functions or (the placeholders only) Secrets Manager.
  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.iam_policies["ci-plan"]).Statement : [
        for a in flatten([s.Action]) : s.Effect == "Allow" && (can(regex("^[a-z0-9]+:(Get|List|Describe)", a)) || contains(["states:ValidateStateMachineDefinition", "kms:Decrypt"], a))
      ]
    ]))
    error_message = "ci-plan may do more than read."
  }
  assert {
    condition = [
      for s in jsondecode(output.iam_policies["ci-plan"]).Statement : join(" ", sort(keys(s.Condition.StringEquals)))
      if contains(flatten([s.Action]), "secretsmanager:GetSecretValue")
    ] == ["aws:ResourceTag/application aws:ResourceTag/environment secretsmanager:VersionId"]
    error_message = "ci-plan may read a secret version other than Terraform's placeholder."
  }
  # Both reach only this deployment's secrets: tagged application = rotor, environment = test.
  assert {
    condition = alltrue(flatten([
      for name in ["ci-plan", "ci-deploy"] : [
        for s in jsondecode(output.iam_policies[name]).Statement :
        try(s.Condition.StringEquals["aws:ResourceTag/application"], "") == "rotor" && try(s.Condition.StringEquals["aws:ResourceTag/environment"], "") == "test"
        if anytrue([for a in flatten([s.Action]) : startswith(a, "secretsmanager:")])
      ]
    ]))
    error_message = "ci-plan or ci-deploy may reach a secret that is not this deployment's."
  }
  assert {
    condition = [
      for s in jsondecode(output.iam_policies["ci-plan"]).Statement : s.Resource if contains(flatten([s.Action]), "s3:GetObject")
      ] == [[
        "arn:aws:s3:::example-terraform-state/rotor/production.tfstate",
        "arn:aws:s3:::example-terraform-state/rotor/production.tfstate.tflock",
    ]]
    error_message = "ci-plan reads exactly the state object (and its lock)."
  }
  assert {
    condition = [
      for s in jsondecode(output.iam_policies["ci-plan"]).Statement : s.Condition.StringEquals["s3:prefix"] if contains(flatten([s.Action]), "s3:ListBucket")
      ] == [[
        "env:/", "rotor/production.tfstate", "rotor/production.tfstate.tflock",
    ]]
    error_message = "ci-plan lists the state bucket only at the workspaces' prefix and the state key."
  }
  assert {
    condition = [
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement : s.Resource if contains(flatten([s.Action]), "s3:PutObject")
      ] == [[
        "arn:aws:s3:::example-terraform-state/rotor/production.tfstate",
        "arn:aws:s3:::example-terraform-state/rotor/production.tfstate.tflock",
    ]]
    error_message = "ci-deploy writes exactly the state object and its lock."
  }

  # ci-deploy: creates or changes roles only under the boundary, never removes one, never
  # touches the CI roles, the boundary, the key's policy or lifetime.
  assert {
    condition = alltrue([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement :
      s.Condition.StringEquals["iam:PermissionsBoundary"] == "arn:aws:iam::123456789012:policy/rotor-test-boundary"
      if s.Effect == "Allow" && anytrue([for a in flatten([s.Action]) : contains(["iam:PutRolePolicy", "iam:DeleteRolePolicy"], a)])
    ])
    error_message = "ci-deploy may write a role's permissions without the boundary condition."
  }
  # ... on the deployment's roles by exact name (never ci-plan or ci-deploy), and passes only
  # the service roles.
  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement : [
        for r in flatten([s.Resource]) : !strcontains(r, "*") && !endswith(r, "-ci-deploy") && !endswith(r, "-ci-plan")
      ] if s.Effect == "Allow" && anytrue([for a in flatten([s.Action]) : startswith(a, "iam:")])
    ])) && length(flatten([for s in jsondecode(output.iam_policies["ci-deploy"]).Statement : flatten([s.Resource]) if s.Effect == "Allow" && contains(flatten([s.Action]), "iam:PutRolePolicy")])) == 9
    error_message = "ci-deploy may change a role other than the deployment's nine service roles (ci-rotate is the administrator's)."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement : !anytrue([for r in flatten([s.Resource]) : endswith(r, "-ci-rotate")])
      if contains(flatten([s.Action]), "iam:PassRole")
    ])
    error_message = "ci-deploy may pass ci-rotate to a service."
  }
  assert {
    condition = alltrue([
      for target in ["role/rotor-test-ci-deploy", "role/rotor-test-ci-plan", "role/rotor-test-ci-rotate", "policy/rotor-test-boundary", "policy/rotor-test-ci-*"] : anytrue([
        for s in jsondecode(output.iam_policies["ci-deploy"]).Statement :
        s.Effect == "Deny" && contains(flatten([s.Resource]), "arn:aws:iam::123456789012:${target}") && length(setsubtract([
          "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary",
          "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy",
        ], flatten([s.Action]))) == 0
      ])
    ])
    error_message = "ci-deploy is not denied changing the CI roles and the boundary."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "iam:DeleteRolePermissionsBoundary") && contains(flatten([s.Resource]), "arn:aws:iam::123456789012:role/rotor-test-*")
      ]) && anytrue([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement :
      s.Effect == "Deny" && length(setsubtract(["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey"], flatten([s.Action]))) == 0
    ])
    error_message = "ci-deploy may remove a boundary or change the key's policy or lifetime."
  }
  assert {
    condition = length(setintersection(toset(flatten([
      for s in jsondecode(output.iam_policies["ci-deploy"]).Statement : flatten([s.Action]) if s.Effect == "Allow"
      ])), toset([
      "kms:CreateKey", "kms:ReplicateKey", "kms:PutKeyPolicy", "iam:CreateOpenIDConnectProvider", "iam:CreateUser",
      "iam:CreateAccessKey", "iam:PutUserPolicy", "iam:CreateRole", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy",
      "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:CreatePolicy", "iam:CreatePolicyVersion",
      "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret",
      "secretsmanager:UpdateSecret", "secretsmanager:ReplicateSecretToRegions", "secretsmanager:PutResourcePolicy",
      "secretsmanager:UpdateSecretVersionStage", "logs:PutResourcePolicy",
    ]))) == 0
    error_message = "ci-deploy may create or delete identities, keys or secrets, change a trust or a value, or open a resource policy."
  }

  # Every role of the deployment except the two CI Terraform roles carries the boundary ...
  assert {
    condition = alltrue([
      for r in concat(values(aws_iam_role.function), [aws_iam_role.state_machine, aws_iam_role.ci_rotate], aws_iam_role.scheduler, aws_iam_role.age_check) :
      r.permissions_boundary == aws_iam_policy.boundary.arn
    ]) && aws_iam_policy.boundary.name == "rotor-test-boundary"
    error_message = "A role of the deployment has no permissions boundary."
  }
  # ... and the boundary never cuts what a role's own policy grants.
  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : [
          for a in flatten([s.Action]) : [
            for r in flatten([s.Resource]) : anytrue([
              for b in jsondecode(output.permissions_boundary_json).Statement :
              contains(flatten([b.Action]), a) && anytrue([for br in flatten([b.Resource]) : br == "*" || br == r || (endswith(br, "*") && startswith(r, trimsuffix(br, "*")))])
            ])
          ]
        ] if s.Effect == "Allow"
      ] if !contains(["ci-plan", "ci-deploy"], name) && !startswith(name, "app-")
    ]))
    error_message = "The permissions boundary denies something a role's own policy allows."
  }
  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.permissions_boundary_json).Statement : [for a in flatten([s.Action]) : !strcontains(a, "*")]
    ]))
    error_message = "The boundary allows a wildcard action."
  }
}

run "without_iam_secrets_no_role_touches_iam" {
  command = apply

  variables {
    regions              = ["us-east-1"]
    replica_kms_key_arns = {}
    lambda_architecture  = "x86_64"
    secrets = {
      session = {
        name = "rotor-test/session_signing_key"
        kind = "generated"
      }
    }
    applications = {}
  }

  assert {
    condition = alltrue(flatten([
      for name, p in merge(output.iam_policies, { boundary = output.permissions_boundary_json }) : [
        for s in jsondecode(p).Statement : [
          for a in flatten([s.Action]) : !strcontains(a, "AccessKey") && !anytrue([for r in flatten([s.Resource]) : strcontains(r, ":user/")])
        ]
      ]
    ]))
    error_message = "With no iam-access-key secret, no role may touch IAM users or their keys."
  }
  assert {
    condition     = alltrue([for f, fn in aws_lambda_function.this : one(fn.architectures) == "x86_64"])
    error_message = "lambda_architecture does not reach the functions."
  }
  assert {
    condition     = length(aws_scheduler_schedule.rotation) == 0 && length(aws_iam_role.scheduler) == 0 && length(aws_sfn_state_machine.age_check) == 0
    error_message = "No schedule was asked for."
  }
}

run "ci_rotate_metadata_read_can_be_turned_off_and_is_never_a_value" {
  command = apply

  variables {
    ci_rotate_reads_secret_metadata = false
  }

  assert {
    condition = sort(distinct(flatten([for s in jsondecode(output.iam_policies["ci-rotate"]).Statement : s.Action]))) == sort([
      "states:StartExecution", "states:DescribeExecution", "states:GetExecutionHistory",
      "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
    ])
    error_message = "Without ci_rotate_reads_secret_metadata, ci-rotate has no Secrets Manager action and no kms:DescribeKey."
  }
}

run "a_vendor_key_without_probe_is_refused" {
  command = plan

  variables {
    secrets = {
      bad = {
        name = "rotor-test/bad"
        kind = "vendor-api-key"
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

run "replica_regions_need_replica_keys" {
  command = plan

  variables {
    replica_kms_key_arns = {}
  }

  expect_failures = [var.replica_kms_key_arns]
}

# Issue 11's smaller gaps: PassRole per role and service, each state machine role trusts its own
# state machine, ci-rotate's credentials outlast the workflows' two-hour wait.
run "roles_are_passed_and_trusted_one_by_one" {
  command = apply

  assert {
    condition = alltrue([
      for st in flatten([for k, p in aws_iam_policy.ci_deploy : jsondecode(p.policy).Statement]) :
      length(st.Condition.StringEquals) == 1 && can(tostring(st.Condition.StringEquals["iam:PassedToService"]))
      if contains(flatten([st.Action]), "iam:PassRole")
    ])
    error_message = "A PassRole statement names more than one service (or none)."
  }
  assert {
    condition = {
      for st in flatten([for k, p in aws_iam_policy.ci_deploy : jsondecode(p.policy).Statement]) :
      st.Condition.StringEquals["iam:PassedToService"] => sort(st.Resource)
      if contains(flatten([st.Action]), "iam:PassRole")
      } == {
      "lambda.amazonaws.com"    = sort([for r in values(aws_iam_role.function) : r.arn])
      "states.amazonaws.com"    = sort(concat([aws_iam_role.state_machine.arn], aws_iam_role.age_check[*].arn))
      "scheduler.amazonaws.com" = sort(aws_iam_role.scheduler[*].arn)
    }
    error_message = "ci-deploy may pass a role to a service other than its own."
  }
  assert {
    condition = (
      one(jsondecode(aws_iam_role.state_machine.assume_role_policy).Statement).Condition.ArnLike["aws:SourceArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:rotor-test-rotation"
      && one(jsondecode(aws_iam_role.age_check[0].assume_role_policy).Statement).Condition.ArnLike["aws:SourceArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:rotor-test-age-check"
    )
    error_message = "A state machine role does not trust its own state machine only (aws:SourceArn)."
  }
  assert {
    condition     = aws_iam_role.ci_rotate.max_session_duration >= 9000
    error_message = "ci-rotate's credentials must outlast the workflows' rotor start --wait --timeout 7200 (role-duration-seconds 9000)."
  }
  assert {
    condition = alltrue([
      for f, fn in aws_lambda_function.this : !contains(keys(fn.environment[0].variables), "ROTOR_PROBE_ALLOWED_HOSTS")
    ])
    error_message = "Without probe_allowed_hosts no function has an allow-list (presets only)."
  }
}

run "the_probe_allow_list_reaches_health_probe_only" {
  command = apply

  variables {
    probe_allowed_hosts = ["proxy.example.com", "vendor.internal"]
  }

  assert {
    condition = alltrue([
      for f, fn in aws_lambda_function.this :
      lookup(fn.environment[0].variables, "ROTOR_PROBE_ALLOWED_HOSTS", null) == (f == "health-probe" ? "proxy.example.com,vendor.internal" : null)
    ])
    error_message = "ROTOR_PROBE_ALLOWED_HOSTS must be set on health-probe only."
  }
}

run "the_probe_allow_list_holds_host_names_only" {
  command = plan

  variables {
    probe_allowed_hosts = ["https://proxy.example.com"]
  }

  expect_failures = [var.probe_allowed_hosts]
}

run "ci_deploy_never_shares_ci_rotates_subject" {
  command = plan

  variables {
    github_deploy_environment = "production"
  }

  expect_failures = [var.github_deploy_environment]
}

run "ci_deploy_takes_the_deploy_environment_it_is_given" {
  command = apply

  variables {
    github_deploy_environment = "production-terraform"
  }

  assert {
    condition     = jsondecode(aws_iam_role.ci_deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == "repo:example-org/rotor:environment:production-terraform"
    error_message = "ci-deploy does not trust the given deploy environment."
  }
}

# VPC endpoints are opt-in: by default no secret policy mentions aws:SourceVpce and no function
# has a VPC configuration.
run "by_default_the_secrets_are_read_over_the_public_endpoint" {
  command = apply

  assert {
    condition = alltrue([
      for k, p in aws_secretsmanager_secret_policy.this :
      !strcontains(p.policy, "aws:SourceVpce")
    ]) && alltrue([for f, fn in aws_lambda_function.this : length(fn.vpc_config) == 0])
    error_message = "Without vpc_endpoint_ids, nothing may depend on a VPC."
  }
}

run "with_vpc_endpoints_values_are_read_only_through_them" {
  command = apply

  variables {
    vpc_endpoint_ids        = ["vpce-0123456789abcdef0", "vpce-0fedcba9876543210"]
    subnet_ids              = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    security_group_ids      = ["sg-0123456789abcdef0"]
    administrator_role_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
  }

  # Every secret: GetSecretValue denied unless through the endpoints or by an administrator.
  assert {
    condition = alltrue([
      for k, p in aws_secretsmanager_secret_policy.this :
      contains(jsondecode(p.policy).Statement, {
        Sid       = "ReadValuesOnlyThroughTheVpcEndpoints"
        Effect    = "Deny"
        Principal = "*"
        Action    = ["secretsmanager:GetSecretValue"]
        Resource  = "*"
        Condition = {
          StringNotEquals = { "aws:SourceVpce" = ["vpce-0123456789abcdef0", "vpce-0fedcba9876543210"] }
          ArnNotEquals    = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/platform-admin"] }
        }
      })
    ]) && length(aws_secretsmanager_secret_policy.this) == 3
    error_message = "A secret's policy does not confine reads to the VPC endpoints."
  }
  # The functions run in the VPC, and their roles may attach them to it (and nothing else of EC2).
  assert {
    condition = alltrue([
      for f, fn in aws_lambda_function.this :
      fn.vpc_config[0].subnet_ids == toset(["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"])
      && fn.vpc_config[0].security_group_ids == toset(["sg-0123456789abcdef0"])
    ]) && length(aws_lambda_function.this) == 6
    error_message = "The functions do not run in the given subnets."
  }
  assert {
    condition = alltrue([
      for f, p in aws_iam_role_policy.function :
      sort(flatten([for s in jsondecode(p.policy).Statement : s.Action if anytrue([for a in flatten([s.Action]) : startswith(a, "ec2:")])])) == tolist(["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"])
    ])
    error_message = "A function role's EC2 permissions are not exactly what Lambda needs to attach it to the VPC."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s.Sid == "AtMostEc2OfThisDeployment"
    ])
    error_message = "The boundary does not allow the functions' network interfaces."
  }
  # ci-deploy may describe the VPC Lambda checks it against.
  assert {
    condition = anytrue([
      for s in jsondecode(output.iam_policies["ci-plan"]).Statement : s.Sid == "DescribeTheFunctionsVpc"
    ])
    error_message = "ci-deploy cannot set the functions' VPC configuration."
  }
}

run "vpc_endpoints_need_the_functions_in_the_vpc" {
  command = plan

  variables {
    vpc_endpoint_ids = ["vpce-0123456789abcdef0"]
  }

  expect_failures = [var.vpc_endpoint_ids]
}

run "subnets_and_security_groups_go_together" {
  command = plan

  variables {
    subnet_ids = ["subnet-0123456789abcdef0"]
  }

  expect_failures = [var.subnet_ids]
}

# The audit trail is opt-in: by default none is created or named.
run "by_default_no_trail" {
  command = apply

  assert {
    condition     = length(aws_cloudtrail.this) == 0 && length(aws_s3_bucket.trail) == 0 && output.cloudtrail == null
    error_message = "A trail exists without create_cloudtrail."
  }
}

run "the_audit_trail_is_multi_region_validated_encrypted_and_the_administrators" {
  command = apply

  variables {
    create_cloudtrail = true
  }

  assert {
    condition = (aws_cloudtrail.this[0].is_multi_region_trail && aws_cloudtrail.this[0].enable_log_file_validation
      && aws_cloudtrail.this[0].include_global_service_events
    && aws_cloudtrail.this[0].kms_key_id == aws_kms_key.this.arn && aws_cloudtrail.this[0].name == "rotor-test-audit")
    error_message = "The trail must be multi-Region, validated and encrypted with the deployment's key."
  }
  assert {
    condition = (aws_s3_bucket_versioning.trail[0].versioning_configuration[0].status == "Enabled"
      && aws_s3_bucket_public_access_block.trail[0].restrict_public_buckets
      && one(aws_s3_bucket_server_side_encryption_configuration.trail[0].rule).apply_server_side_encryption_by_default[0].kms_master_key_id == aws_kms_key.this.arn
    && one(aws_s3_bucket_lifecycle_configuration.trail[0].rule).expiration[0].days == 2557)
    error_message = "The trail's bucket must be versioned, private, encrypted with the key and kept 7 years."
  }
  # CloudTrail writes this trail only; the key lets CloudTrail encrypt for this trail only.
  assert {
    condition = alltrue([
      for s in jsondecode(aws_s3_bucket_policy.trail[0].policy).Statement :
      s.Effect == "Deny" || try(s.Condition.StringEquals["aws:SourceArn"], null) == "arn:aws:cloudtrail:us-east-1:123456789012:trail/rotor-test-audit"
      ]) && anytrue([
      for s in jsondecode(aws_kms_key.this.policy).Statement :
      s.Sid == "CloudTrailEncryptsThisDeploymentsTrail" && try(s.Condition.StringEquals["aws:SourceArn"], null) == "arn:aws:cloudtrail:us-east-1:123456789012:trail/rotor-test-audit"
    ])
    error_message = "The bucket or the key lets CloudTrail write for another trail."
  }
  # No role of the deployment may change, stop or delete the trail or write to its bucket; the
  # CI roles only read them (a plan refreshes them).
  assert {
    condition = alltrue(flatten([
      for name, p in output.iam_policies : [
        for s in jsondecode(p).Statement : [
          for a in flatten([s.Action]) :
          !(startswith(a, "cloudtrail:") && !contains(local.trail_read_actions, a))
          && !(startswith(a, "s3:") && contains(flatten([s.Resource]), "arn:aws:s3:::rotor-test-audit-trail-123456789012") && !contains(local.trail_bucket_read_actions, a))
        ]
      ]
    ]))
    error_message = "A deployment role may change the audit trail or its bucket."
  }
  assert {
    condition     = output.cloudtrail.name == "rotor-test-audit" && output.cloudtrail.bucket != null
    error_message = "The cloudtrail output does not name the trail and its bucket."
  }
}

run "an_existing_trail_is_named_not_created" {
  command = apply

  variables {
    cloudtrail_name = "org-trail"
  }

  assert {
    condition     = length(aws_cloudtrail.this) == 0 && output.cloudtrail == { name = "org-trail", arn = null, bucket = null }
    error_message = "Naming an existing trail must create nothing and name it in the output."
  }
}

run "a_trail_is_created_or_named_not_both" {
  command = plan

  variables {
    create_cloudtrail = true
    cloudtrail_name   = "org-trail"
  }

  expect_failures = [var.create_cloudtrail]
}
