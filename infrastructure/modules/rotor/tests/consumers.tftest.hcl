# Consumers and applications, checked offline with a mocked AWS provider:
#   - the state machine's role may ecs:UpdateService/DescribeServices exactly the services the
#     secrets declare as consumers (never "*"; no statement at all when none does), and the
#     boundary allows exactly as much;
#   - the rotor:consumers tag is the services by name, ecs:<cluster>/<service>, comma-separated,
#     and the two seconds tags are written when set;
#   - each application's read policy reaches its own secrets only;
#   - a consumer that is not a long-format ECS service ARN of the primary region and this
#     account, and an application naming an unknown secret, are refused.
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

# Each secret its own ARN (the mock gives every secret the same one), so that a policy naming
# the wrong secret shows.
override_resource {
  target = aws_secretsmanager_secret.this["openai"]
  values = {
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/openai_api_key-OpEnAi"
    id  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/openai_api_key-OpEnAi"
  }
}
override_resource {
  target = aws_secretsmanager_secret.this["polygon"]
  values = {
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/polygon_api_key-PoLyGn"
    id  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/polygon_api_key-PoLyGn"
  }
}
override_resource {
  target = aws_secretsmanager_secret.this["deployer"]
  values = {
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/deployer_access_key-DePlOy"
    id  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/deployer_access_key-DePlOy"
  }
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
    # Two consumer services ...
    openai = {
      name  = "rotor-test/openai_api_key"
      kind  = "vendor-api-key"
      probe = "openai"
      consumers = [
        "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
        "arn:aws:ecs:us-east-1:123456789012:service/prod/worker",
      ]
      consumer_timeout_seconds = 600
      consumer_poll_seconds    = 10
    }
    # ... and none.
    polygon = {
      name  = "rotor-test/polygon_api_key"
      kind  = "vendor-api-key"
      probe = "polygon"
    }
    deployer = {
      name     = "rotor-test/deployer_access_key"
      kind     = "iam-access-key"
      iam_user = "deployer"
    }
  }
  applications = {
    backend = { secrets = ["openai", "polygon"] }
    ci      = { secrets = ["deployer"] }
  }
}

# (a) The state machine's role: ecs:UpdateService and ecs:DescribeServices on exactly the two
# declared services, in one statement; no ecs action anywhere else, never on "*".
run "the_state_machine_redeploys_exactly_the_declared_services" {
  command = apply

  assert {
    condition = jsonencode([
      for s in jsondecode(output.iam_policies["rotation-sfn"]).Statement : {
        effect = s.Effect, actions = sort(flatten([s.Action])), resources = sort(flatten([s.Resource]))
      } if anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:")])
      ]) == jsonencode([{
        effect  = "Allow"
        actions = ["ecs:DescribeServices", "ecs:UpdateService"]
        resources = [
          "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
          "arn:aws:ecs:us-east-1:123456789012:service/prod/worker",
        ]
    }])
    error_message = "The state machine's role must allow ecs:UpdateService and ecs:DescribeServices on exactly the two declared services (one statement)."
  }
  # What is deployed is what the output shows.
  assert {
    condition     = aws_iam_role_policy.state_machine.policy == output.iam_policies["rotation-sfn"] && aws_iam_role_policy.state_machine.role == aws_iam_role.state_machine.id
    error_message = "The state machine role's inline policy is not the rotation-sfn policy."
  }
  assert {
    condition = alltrue(flatten([
      for name, p in merge(output.iam_policies, { boundary = output.permissions_boundary_json }) : [
        for s in jsondecode(p).Statement : !contains(flatten([s.Resource]), "*") && !anytrue([for r in flatten([s.Resource]) : strcontains(r, ":ecs:") && strcontains(r, "*")])
        if anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:")])
      ]
    ]))
    error_message = "An ECS action is allowed on \"*\" or a wildcard ARN."
  }
  assert {
    condition = [
      for name, p in output.iam_policies : name
      if anytrue([for s in jsondecode(p).Statement : anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:")])])
    ] == ["rotation-sfn"]
    error_message = "A role other than the state machine's may call ECS."
  }
  # The boundary allows exactly as much ECS as the role's own policy.
  assert {
    condition = jsonencode([
      for s in jsondecode(output.permissions_boundary_json).Statement : {
        actions = sort(flatten([s.Action])), resources = sort(flatten([s.Resource]))
      } if anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:")])
      ]) == jsonencode([{
        actions = ["ecs:DescribeServices", "ecs:UpdateService"]
        resources = [
          "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
          "arn:aws:ecs:us-east-1:123456789012:service/prod/worker",
        ]
    }])
    error_message = "The boundary's ECS statement is not exactly the declared services."
  }
}

# The union: a service two secrets declare is granted once, each declared service exactly once.
run "services_several_secrets_declare_are_granted_once" {
  command = apply

  variables {
    secrets = {
      openai = {
        name  = "rotor-test/openai_api_key"
        kind  = "vendor-api-key"
        probe = "openai"
        consumers = [
          "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
          "arn:aws:ecs:us-east-1:123456789012:service/prod/worker",
        ]
      }
      polygon = {
        name      = "rotor-test/polygon_api_key"
        kind      = "vendor-api-key"
        probe     = "polygon"
        consumers = ["arn:aws:ecs:us-east-1:123456789012:service/batch/reports", "arn:aws:ecs:us-east-1:123456789012:service/prod/api"]
      }
      deployer = {
        name     = "rotor-test/deployer_access_key"
        kind     = "iam-access-key"
        iam_user = "deployer"
      }
    }
  }

  assert {
    condition = flatten([
      for s in jsondecode(output.iam_policies["rotation-sfn"]).Statement : flatten([s.Resource])
      if contains(flatten([s.Action]), "ecs:UpdateService")
      ]) == [
      "arn:aws:ecs:us-east-1:123456789012:service/batch/reports",
      "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
      "arn:aws:ecs:us-east-1:123456789012:service/prod/worker",
    ]
    error_message = "ecs:UpdateService must be allowed on the union of the declared services, each once."
  }
}

# (b) No consumers anywhere: no ECS statement in the role's policy or the boundary, no tag.
run "without_consumers_there_is_no_ecs_statement" {
  command = apply

  variables {
    secrets = {
      openai = {
        name  = "rotor-test/openai_api_key"
        kind  = "vendor-api-key"
        probe = "openai"
      }
      polygon = {
        name  = "rotor-test/polygon_api_key"
        kind  = "vendor-api-key"
        probe = "polygon"
      }
      deployer = {
        name     = "rotor-test/deployer_access_key"
        kind     = "iam-access-key"
        iam_user = "deployer"
      }
    }
  }

  assert {
    condition = alltrue(flatten([
      for name, p in merge(output.iam_policies, { boundary = output.permissions_boundary_json }) : [
        for s in jsondecode(p).Statement : !anytrue([for a in flatten([s.Action]) : startswith(a, "ecs:")]) && !anytrue([for r in flatten([s.Resource]) : strcontains(r, ":ecs:")])
      ]
    ]))
    error_message = "With no consumers declared, no policy (nor the boundary) may mention ECS."
  }
  assert {
    condition     = length(jsondecode(output.iam_policies["rotation-sfn"]).Statement) == 4
    error_message = "Without consumers the state machine's policy is its four statements (functions, key, log delivery, X-Ray)."
  }
  assert {
    condition = alltrue([
      for k, s in aws_secretsmanager_secret.this : !anytrue([for t in keys(s.tags) : startswith(t, "rotor:consumer")])
    ])
    error_message = "A secret without consumers carries a rotor:consumer* tag."
  }
}

# (c) The tags: the services by name, in the order declared; the seconds when set.
run "the_consumers_tag_names_cluster_and_service" {
  command = apply

  assert {
    condition     = aws_secretsmanager_secret.this["openai"].tags["rotor:consumers"] == "ecs:prod/api,ecs:prod/worker"
    error_message = "rotor:consumers must be ecs:<cluster>/<service> of each declared service, comma-separated: ${aws_secretsmanager_secret.this["openai"].tags["rotor:consumers"]}"
  }
  assert {
    condition = (aws_secretsmanager_secret.this["openai"].tags["rotor:consumer-timeout-seconds"] == "600"
    && aws_secretsmanager_secret.this["openai"].tags["rotor:consumer-poll-seconds"] == "10")
    error_message = "consumer_timeout_seconds and consumer_poll_seconds must reach their tags."
  }
  assert {
    condition = alltrue([
      for k in ["polygon", "deployer"] : !anytrue([for t in keys(aws_secretsmanager_secret.this[k].tags) : startswith(t, "rotor:consumer")])
    ])
    error_message = "A secret without consumers carries a rotor:consumer* tag."
  }
}

# (d) Each application reads its own secrets only: the backend never the IAM deployer key.
run "an_application_policy_lists_only_its_secrets" {
  command = apply

  assert {
    condition     = sort(keys(output.application_policy_arns)) == tolist(["backend", "ci"]) && sort(keys(output.application_policy_json)) == tolist(["backend", "ci"])
    error_message = "One read policy per application."
  }
  assert {
    condition = (aws_iam_policy.application["backend"].name == "rotor-test-app-backend-read-secrets"
      && aws_iam_policy.application["ci"].name == "rotor-test-app-ci-read-secrets"
    && jsondecode(aws_iam_policy.application["backend"].policy) == jsondecode(output.application_policy_json["backend"]))
    error_message = "The application policies are not named <prefix>-app-<name>-read-secrets, or differ from their output."
  }
  # The backend: GetSecretValue/DescribeSecret on openai and polygon in both regions, same
  # account; kms:Decrypt only through Secrets Manager under those two secrets' ARNs.
  assert {
    condition = jsonencode(jsondecode(output.application_policy_json["backend"]).Statement) == jsonencode([
      {
        Sid      = "ReadTheApplicationsSecretsOfThisAccount"
        Effect   = "Allow"
        Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        Resource = local.application_secret_arns_all_regions["backend"]
        Condition = {
          StringEquals = { "aws:ResourceAccount" = "123456789012" }
        }
      },
      {
        Sid      = "DecryptTheApplicationsSecretsThroughSecretsManager"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = ["arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef", "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"]
        Condition = {
          StringEquals = {
            "kms:ViaService"                  = ["secretsmanager.us-east-1.amazonaws.com", "secretsmanager.us-west-2.amazonaws.com"]
            "kms:EncryptionContext:SecretARN" = local.application_secret_arns_all_regions["backend"]
          }
        }
      },
    ])
    error_message = "The backend's policy is not exactly: read its secrets (same account), decrypt them through Secrets Manager."
  }
  assert {
    condition = sort(local.application_secret_arns_all_regions["backend"]) == sort([
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/openai_api_key-OpEnAi",
      "arn:aws:secretsmanager:us-west-2:123456789012:secret:rotor-test/openai_api_key-OpEnAi",
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/polygon_api_key-PoLyGn",
      "arn:aws:secretsmanager:us-west-2:123456789012:secret:rotor-test/polygon_api_key-PoLyGn",
    ])
    error_message = "The backend's secrets are not exactly openai and polygon, in both regions."
  }
  assert {
    condition = !anytrue([
      for s in jsondecode(output.application_policy_json["backend"]).Statement : anytrue([
        for v in flatten(concat(flatten([s.Resource]), [for c in values(try(s.Condition.StringEquals, {})) : c])) : strcontains(v, "deployer_access_key")
      ])
    ])
    error_message = "The backend's policy reaches the IAM deployer key."
  }
  assert {
    condition = flatten([
      for s in jsondecode(output.application_policy_json["ci"]).Statement : flatten([s.Resource]) if contains(flatten([s.Action]), "secretsmanager:GetSecretValue")
      ]) == [
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotor-test/deployer_access_key-DePlOy",
      "arn:aws:secretsmanager:us-west-2:123456789012:secret:rotor-test/deployer_access_key-DePlOy",
    ]
    error_message = "The ci application's policy is not exactly the deployer key."
  }
  # An application policy reads; it writes nothing and is no key user beyond Secrets Manager.
  assert {
    condition = alltrue(flatten([
      for app, p in output.application_policy_json : [
        for s in jsondecode(p).Statement : [
          for a in flatten([s.Action]) : contains(["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "kms:Decrypt"], a)
        ]
      ]
    ]))
    error_message = "An application policy allows more than GetSecretValue, DescribeSecret and kms:Decrypt."
  }
}

run "without_applications_no_read_policy" {
  command = apply

  variables {
    applications = {}
  }

  assert {
    condition     = length(aws_iam_policy.application) == 0 && output.application_policy_arns == {} && !anytrue([for name in keys(output.iam_policies) : startswith(name, "app-")])
    error_message = "No application, no read policy."
  }
}

# (e) Refused: a consumer that is not a long-format ECS service ARN of the primary region.
run "a_short_format_service_arn_is_refused" {
  command = plan

  variables {
    secrets = {
      openai = {
        name      = "rotor-test/openai_api_key"
        kind      = "vendor-api-key"
        probe     = "openai"
        consumers = ["arn:aws:ecs:us-east-1:123456789012:service/api"]
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

run "a_cluster_or_bare_name_is_not_a_consumer" {
  command = plan

  variables {
    secrets = {
      openai = {
        name      = "rotor-test/openai_api_key"
        kind      = "vendor-api-key"
        probe     = "openai"
        consumers = ["arn:aws:ecs:us-east-1:123456789012:cluster/prod", "prod/api"]
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

run "a_service_in_another_region_is_refused" {
  command = plan

  variables {
    secrets = {
      openai = {
        name      = "rotor-test/openai_api_key"
        kind      = "vendor-api-key"
        probe     = "openai"
        consumers = ["arn:aws:ecs:us-west-2:123456789012:service/prod/api"]
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

run "a_service_named_twice_is_refused" {
  command = plan

  variables {
    secrets = {
      openai = {
        name      = "rotor-test/openai_api_key"
        kind      = "vendor-api-key"
        probe     = "openai"
        consumers = ["arn:aws:ecs:us-east-1:123456789012:service/prod/api", "arn:aws:ecs:us-east-1:123456789012:service/prod/api"]
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

run "consumer_timings_without_consumers_are_refused" {
  command = plan

  variables {
    secrets = {
      openai = {
        name                  = "rotor-test/openai_api_key"
        kind                  = "vendor-api-key"
        probe                 = "openai"
        consumer_poll_seconds = 30
      }
    }
    applications = {}
  }

  expect_failures = [var.secrets]
}

# The account is the provider's (mocked 123456789012): a service of another account is refused
# before the role's policy is written.
run "a_service_of_another_account_is_refused" {
  command = plan

  variables {
    secrets = {
      openai = {
        name      = "rotor-test/openai_api_key"
        kind      = "vendor-api-key"
        probe     = "openai"
        consumers = ["arn:aws:ecs:us-east-1:210987654321:service/prod/api"]
      }
    }
    applications = {}
  }

  expect_failures = [aws_iam_role_policy.state_machine]
}

run "an_application_naming_an_unknown_secret_is_refused" {
  command = plan

  variables {
    applications = {
      backend = { secrets = ["openai", "no-such-secret"] }
    }
  }

  expect_failures = [var.applications]
}
