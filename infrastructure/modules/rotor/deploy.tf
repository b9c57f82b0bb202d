# Terraform from GitHub Actions (.github/workflows/deploy.yml), in two roles:
#
# ci-plan: `terraform plan` on pull requests. Trusts repo:<repository>:pull_request, i.e. any
#   pull request from a branch of the repository (forks get no OIDC token), so it can change
#   nothing: reads of this deployment only, the state object read-only, and GetSecretValue
#   only of the placeholder versions Terraform itself wrote (condition secretsmanager:VersionId),
#   never a rotated value.
# ci-deploy: `terraform apply` on main, behind the protected GitHub environment (its required
#   reviewers approve each run). It changes this deployment's resources by their names:
#   functions and their code, state machines and definitions, log groups, schedules, alarms,
#   the topic, tags, and the roles' inline policies, only on roles that carry the permissions
#   boundary below (condition iam:PermissionsBoundary), so no role can ever do more than the
#   deployment's own policies allow.
#   The lifecycle of identities, keys and secrets is an administrator's `terraform apply`
#   (like the very first one, which creates ci-deploy): creating or deleting roles, their trust
#   and attachments, managed policies (the boundary, the CI roles' and the applications'
#   app-<name>-read-secrets), the KMS key (and its policy and lifetime), the OIDC provider,
#   secrets and their values and replicas. Otherwise a trust policy or a new secret would let
#   CI reach past the boundary. Declaring a consumer (var.secrets[*].consumers) is one too: it
#   writes a rotor:* tag and widens the boundary (ecs on the declared services).
#   The deploy workflow then fails with AccessDenied naming the resource.
#
# ci-deploy can replace the functions' code, which runs with the functions' roles (they read
# secrets): the environment's reviewers are the control for that, as for any deploy role.

locals {
  github_plan_subject = "repo:${var.github_repository}:pull_request"

  # Name patterns of everything this module creates (the secrets have their own names).
  arn_prefix       = "arn:${local.partition}"
  iam_arn          = "${local.arn_prefix}:iam::${local.account_id}"
  deploy_role_arns = "${local.iam_arn}:role/${local.prefix}-*"
  # The roles AWS services assume, and with ci-rotate (which GitHub assumes) every role
  # ci-deploy may change (policies and tags only): by exact ARN, from the roles themselves.
  passed_role_arns = concat(
    [for r in values(aws_iam_role.function) : r.arn], [aws_iam_role.state_machine.arn],
    aws_iam_role.scheduler[*].arn, aws_iam_role.age_check[*].arn,
  )
  # ci-rotate carries the boundary too, but its policy is the administrator's: ci-deploy could
  # otherwise make it a reader of every secret and assume it (same GitHub environment).
  bounded_role_arns = local.passed_role_arns
  ci_deploy_arn     = "${local.iam_arn}:role/${local.prefix}-ci-deploy"
  ci_plan_arn       = "${local.iam_arn}:role/${local.prefix}-ci-plan"
  boundary_arn      = "${local.iam_arn}:policy/${local.prefix}-boundary"
  deploy_policy_arn = "${local.iam_arn}:policy/${local.prefix}-ci-*"
  # The applications' read policies (consumer.tf): app-<name>-read-secrets.
  application_policy_arns = "${local.iam_arn}:policy/${local.prefix}-app-*-read-secrets"
  oidc_arn                = "${local.iam_arn}:oidc-provider/${local.github_oidc_url}"
  function_patterns       = ["${local.arn_prefix}:lambda:${local.region}:${local.account_id}:function:${local.prefix}-*"]
  log_group_patterns = [
    "${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.prefix}-*",
    "${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:/aws/vendedlogs/states/${local.prefix}-*",
  ]
  state_machine_patterns = ["${local.arn_prefix}:states:${local.region}:${local.account_id}:stateMachine:${local.prefix}-*"]
  schedule_patterns = [
    "${local.arn_prefix}:scheduler:${local.region}:${local.account_id}:schedule-group/${local.prefix}",
    "${local.arn_prefix}:scheduler:${local.region}:${local.account_id}:schedule/${local.prefix}/*",
  ]
  topic_patterns = [
    "${local.arn_prefix}:sns:${local.region}:${local.account_id}:${local.prefix}-alarms",
    "${local.arn_prefix}:sns:${local.region}:${local.account_id}:${local.prefix}-alarms:*",
  ]
  alarm_patterns = ["${local.arn_prefix}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.prefix}-*"]
  # The deployment's secrets (and their replicas) by their tags, not their names: a policy
  # listing every name would outgrow IAM's 6,144-character limit for managed policies.
  secret_patterns = [for r in var.regions : "${local.arn_prefix}:secretsmanager:${r}:${local.account_id}:secret:*"]
  secret_scope    = { "aws:ResourceTag/application" = var.name, "aws:ResourceTag/environment" = var.environment }
  key_patterns    = concat(local.kms_key_arns, ["${local.arn_prefix}:kms:${local.region}:${local.account_id}:alias/${local.prefix}"])
  services_using_the_key = flatten([
    for r in var.regions : [for s in ["lambda", "logs", "scheduler", "sns", "states"] : "${s}.${r}.amazonaws.com"]
  ])

  state_object_arns = var.terraform_state_bucket == null ? [] : [
    "${local.arn_prefix}:s3:::${var.terraform_state_bucket}/${var.terraform_state_key}",
    "${local.arn_prefix}:s3:::${var.terraform_state_bucket}/${var.terraform_state_key}.tflock",
  ]
  state_statements = var.terraform_state_bucket == null ? [] : [
    {
      Sid      = "ListTheStateBucketAtTheStateKey"
      Effect   = "Allow"
      Action   = ["s3:ListBucket"]
      Resource = ["${local.arn_prefix}:s3:::${var.terraform_state_bucket}"]
      # The backend lists its workspaces (prefix "env:/") at init, then reads the state key.
      Condition = { StringEquals = { "s3:prefix" = ["env:/", var.terraform_state_key, "${var.terraform_state_key}.tflock"] } }
    },
  ]

  # What `terraform plan` reads (the actions match the calls the AWS provider made against moto
  # in tests/terraform.rs, which checks them).
  read_actions = {
    secretsmanager = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"]
    kms            = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    lambda = [
      "lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionConcurrency",
      "lambda:GetFunctionConfiguration", "lambda:ListTags", "lambda:ListVersionsByFunction",
    ]
    role = [
      "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
    ]
    policy = ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"]
    logs   = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
    states = ["states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"]
    scheduler = [
      "scheduler:GetSchedule", "scheduler:GetScheduleGroup", "scheduler:ListTagsForResource",
    ]
    sns = [
      "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource",
    ]
    cloudwatch = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
  }
  # The trail's and its bucket's reads of a refresh (tests/terraform.rs checks them against the
  # calls Terraform made on moto).
  trail_read_actions = [
    "cloudtrail:DescribeTrails", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors",
    "cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:ListTags",
  ]
  trail_bucket_read_actions = [
    "s3:GetAccelerateConfiguration", "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock", "s3:GetBucketRequestPayment", "s3:GetBucketTagging",
    "s3:GetBucketVersioning", "s3:GetBucketWebsite", "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration", "s3:ListBucket",
  ]
  read_resources = {
    secretsmanager = local.secret_patterns
    kms            = local.key_patterns
    lambda         = local.function_patterns
    role           = [local.deploy_role_arns]
    policy         = [local.boundary_arn, local.application_policy_arns, local.deploy_policy_arn]
    logs           = local.log_group_patterns
    states         = local.state_machine_patterns
    scheduler      = local.schedule_patterns
    sns            = local.topic_patterns
    cloudwatch     = local.alarm_patterns
  }
  # Reads that return something encrypted with the key need kms:Decrypt through that service,
  # under its encryption context: a function's environment (without it every plan would see the
  # variables change), a schedule's input, a state machine's definition.
  decrypt_through = {
    Lambda        = { service = "lambda", context = "aws:lambda:FunctionArn", arns = local.function_patterns }
    Scheduler     = { service = "scheduler", context = "aws:scheduler:schedule-arn", arns = [local.schedule_patterns[1]] }
    StepFunctions = { service = "states", context = "aws:states:stateMachineArn", arns = local.state_machine_patterns }
  }
  read_statements = concat(
    [for k in sort(keys(local.read_actions)) : merge({
      Sid      = "Read${title(k)}OfThisDeployment"
      Effect   = "Allow"
      Action   = local.read_actions[k]
      Resource = local.read_resources[k]
    }, k == "secretsmanager" ? { Condition = { StringEquals = local.secret_scope } } : {})],
    [
      {
        Sid      = "ReadTheOidcProvider"
        Effect   = "Allow"
        Action   = ["iam:GetOpenIDConnectProvider"]
        Resource = [local.oidc_arn]
      },
      {
        # No resource-level permissions for these three.
        Sid      = "ListWithoutResourceLevelPermissions"
        Effect   = "Allow"
        Action   = ["kms:ListAliases", "logs:DescribeLogGroups", "sns:GetSubscriptionAttributes", "states:ValidateStateMachineDefinition"]
        Resource = "*"
      },
    ],
    # The audit trail (create_cloudtrail) is the administrator's; a plan refreshes it, so both
    # CI roles read it and its bucket, and nothing more (no write: cloudtrail.tf).
    !var.create_cloudtrail ? [] : [
      {
        Sid      = "ReadTheAuditTrail"
        Effect   = "Allow"
        Action   = [for a in local.trail_read_actions : a if a != "cloudtrail:DescribeTrails"]
        Resource = [local.trail_arn]
      },
      {
        # DescribeTrails has no resource-level permissions (it lists the account's trails).
        Sid      = "ListTheTrails"
        Effect   = "Allow"
        Action   = ["cloudtrail:DescribeTrails"]
        Resource = ["*"]
      },
      {
        Sid      = "ReadTheAuditTrailsBucket"
        Effect   = "Allow"
        Action   = local.trail_bucket_read_actions
        Resource = ["${local.arn_prefix}:s3:::${local.trail_bucket}"]
      },
    ],
    # The functions in a VPC (subnet_ids): Lambda checks that whoever sets a function's
    # VpcConfig may describe its subnets, security groups and VPC (no resource-level permissions).
    length(var.subnet_ids) == 0 ? [] : [{
      Sid      = "DescribeTheFunctionsVpc"
      Effect   = "Allow"
      Action   = ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]
      Resource = "*"
    }],
    [for name, d in local.decrypt_through : {
      Sid      = "DecryptThrough${name}"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = local.kms_key_arns
      Condition = {
        StringLike   = { "kms:EncryptionContext:${d.context}" = d.arns }
        StringEquals = { "kms:ViaService" = [for r in var.regions : "${d.service}.${r}.amazonaws.com"] }
      }
    }],
  )

  ci_plan_policy = {
    Version = "2012-10-17"
    Statement = concat(local.read_statements, local.state_statements, length(local.state_object_arns) == 0 ? [] : [{
      Sid      = "ReadTheState"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = local.state_object_arns
      }], [
      {
        # Refreshing aws_secretsmanager_secret_version reads the version Terraform wrote: the
        # placeholder, by its id. Any other version (a rotated value) is out of reach.
        Sid      = "ReadOnlyTheBootstrapPlaceholderVersions"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.secret_patterns
        Condition = {
          StringEquals = merge(local.secret_scope, {
            "secretsmanager:VersionId" = [for k in sort(keys(var.secrets)) : aws_secretsmanager_secret_version.bootstrap[k].version_id]
          })
        }
      },
      {
        # Only reachable through the GetSecretValue above.
        Sid      = "DecryptThePlaceholdersThroughSecretsManager"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = local.kms_key_arns
        Condition = {
          StringEquals = { "kms:ViaService" = local.secrets_manager_endpoints }
        }
      },
    ])
  }

  # ci-deploy: the writes. Read actions come from the ci-plan statements (attached to both).
  iam_writes_on_roles = [
    "iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:TagRole", "iam:UntagRole",
  ]
  ci_deploy_policy = {
    Version = "2012-10-17"
    Statement = concat(local.state_statements, length(local.state_object_arns) == 0 ? [] : [{
      Sid      = "ReadAndWriteTheStateAndItsLock"
      Effect   = "Allow"
      Action   = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
      Resource = local.state_object_arns
      }], [
      {
        # Values, replicas, creation and deletion are the administrator's.
        Sid       = "TagTheSecrets"
        Effect    = "Allow"
        Action    = ["secretsmanager:TagResource", "secretsmanager:UntagResource"]
        Resource  = local.secret_patterns
        Condition = { StringEquals = local.secret_scope }
      },
      {
        Sid    = "ManageTheKeysAliasTagsAndRotationNotItsPolicy"
        Effect = "Allow"
        Action = [
          "kms:CreateAlias", "kms:DeleteAlias", "kms:EnableKeyRotation", "kms:TagResource",
          "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
        ]
        Resource = local.key_patterns
      },
      {
        # Creating encrypted secrets, log groups, functions, schedules, topics and state
        # machines: the caller's key use goes through those services only.
        Sid      = "UseTheKeyThroughTheDeploymentsServicesOnly"
        Effect   = "Allow"
        Action   = ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = local.kms_key_arns
        Condition = {
          StringEquals = { "kms:ViaService" = local.services_using_the_key }
        }
      },
      {
        Sid    = "ManageTheFunctions"
        Effect = "Allow"
        Action = [
          "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:DeleteFunctionConcurrency",
          "lambda:PutFunctionConcurrency", "lambda:TagResource", "lambda:UntagResource",
          "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
        ]
        Resource = local.function_patterns
      },
      {
        Sid      = "ChangeRolePoliciesOnlyUnderTheBoundary"
        Effect   = "Allow"
        Action   = ["iam:DeleteRolePolicy", "iam:PutRolePolicy"]
        Resource = local.bounded_role_arns
        Condition = {
          StringEquals = { "iam:PermissionsBoundary" = local.boundary_arn }
        }
      },
      {
        Sid      = "TagAndDescribeTheRoles"
        Effect   = "Allow"
        Action   = ["iam:TagRole", "iam:UntagRole", "iam:UpdateRole", "iam:UpdateRoleDescription"]
        Resource = local.bounded_role_arns
      },
      {
        Sid       = "PassTheFunctionRolesToLambdaOnly"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = [for r in values(aws_iam_role.function) : r.arn]
        Condition = { StringEquals = { "iam:PassedToService" = "lambda.amazonaws.com" } }
      },
      {
        Sid       = "PassTheStateMachineRolesToStepFunctionsOnly"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = concat([aws_iam_role.state_machine.arn], aws_iam_role.age_check[*].arn)
        Condition = { StringEquals = { "iam:PassedToService" = "states.amazonaws.com" } }
      },
      ],
      length(aws_iam_role.scheduler) > 0 ? [{
        Sid       = "PassTheSchedulerRoleToSchedulerOnly"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = aws_iam_role.scheduler[*].arn
        Condition = { StringEquals = { "iam:PassedToService" = "scheduler.amazonaws.com" } }
      }] : [],
      [
        {
          Sid    = "ManageTheLogGroups"
          Effect = "Allow"
          Action = [
            "logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DeleteRetentionPolicy",
            "logs:DisassociateKmsKey", "logs:PutRetentionPolicy", "logs:TagLogGroup", "logs:TagResource",
            "logs:UntagLogGroup", "logs:UntagResource",
          ]
          Resource = local.log_group_patterns
        },
        {
          Sid    = "ManageTheStateMachines"
          Effect = "Allow"
          Action = [
            "states:CreateStateMachine", "states:DeleteStateMachine", "states:TagResource",
            "states:UntagResource", "states:UpdateStateMachine",
          ]
          Resource = local.state_machine_patterns
        },
        {
          Sid    = "ManageTheSchedules"
          Effect = "Allow"
          Action = [
            "scheduler:CreateSchedule", "scheduler:CreateScheduleGroup", "scheduler:DeleteSchedule",
            "scheduler:DeleteScheduleGroup", "scheduler:TagResource", "scheduler:UntagResource",
            "scheduler:UpdateSchedule",
          ]
          Resource = local.schedule_patterns
        },
        {
          Sid    = "ManageTheAlarmTopic"
          Effect = "Allow"
          Action = [
            "sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes",
            "sns:Subscribe", "sns:TagResource", "sns:UntagResource",
          ]
          Resource = local.topic_patterns
        },
        {
          # A subscription's own actions have no resource-level permissions (Service
          # Authorization Reference): on a topic ARN they would never match.
          Sid      = "ManageTheAlarmSubscriptions"
          Effect   = "Allow"
          Action   = ["sns:SetSubscriptionAttributes", "sns:Unsubscribe"]
          Resource = "*"
        },
        {
          Sid      = "ManageTheAlarms"
          Effect   = "Allow"
          Action   = ["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
          Resource = local.alarm_patterns
        },
        {
          Sid    = "NeverChangeTheCiRolesOrTheBoundary"
          Effect = "Deny"
          Action = concat(local.iam_writes_on_roles, [
            "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:DeleteRole",
            "iam:DeleteRolePermissionsBoundary", "iam:SetDefaultPolicyVersion", "iam:UpdateAssumeRolePolicy",
          ])
          Resource = [local.ci_deploy_arn, local.ci_plan_arn, "${local.iam_arn}:role/${local.prefix}-ci-rotate", local.boundary_arn, local.deploy_policy_arn]
        },
        {
          Sid      = "NeverRemoveABoundary"
          Effect   = "Deny"
          Action   = ["iam:DeleteRolePermissionsBoundary"]
          Resource = [local.deploy_role_arns]
        },
        {
          Sid    = "NeverChangeTheKeysPolicyOrLifetime"
          Effect = "Deny"
          Action = [
            "kms:CancelKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy",
            "kms:ScheduleKeyDeletion",
          ]
          Resource = local.kms_key_arns
        },
    ])
  }

  # ci-plan likewise: account-wide reads (IAM, the OIDC provider, the state, the placeholders'
  # version ids, which grow with each secret) and the regional ones.
  ci_plan_account_sids = [
    "ReadRoleOfThisDeployment", "ReadPolicyOfThisDeployment", "ReadTheOidcProvider",
    "ListWithoutResourceLevelPermissions", "DescribeTheFunctionsVpc", "ListTheStateBucketAtTheStateKey", "ReadTheState",
    "ReadOnlyTheBootstrapPlaceholderVersions",
  ]
  ci_plan_policies = {
    "ci-plan"         = { Version = "2012-10-17", Statement = [for st in local.ci_plan_policy.Statement : st if !contains(local.ci_plan_account_sids, st.Sid)] }
    "ci-plan-account" = { Version = "2012-10-17", Statement = [for st in local.ci_plan_policy.Statement : st if contains(local.ci_plan_account_sids, st.Sid)] }
  }

  # Deployed as two managed policies (IAM allows 6,144 characters each): what is account-wide
  # (IAM, the state bucket), and the deployment's regional resources, which grow
  # with each region (key ARNs, service endpoints, secret patterns).
  ci_deploy_account_sids = [
    "ListTheStateBucketAtTheStateKey", "ReadAndWriteTheStateAndItsLock",
    "ChangeRolePoliciesOnlyUnderTheBoundary", "TagAndDescribeTheRoles", "PassTheFunctionRolesToLambdaOnly",
    "PassTheStateMachineRolesToStepFunctionsOnly", "PassTheSchedulerRoleToSchedulerOnly",
    "NeverChangeTheCiRolesOrTheBoundary", "NeverRemoveABoundary",
  ]
  ci_deploy_policies = {
    "ci-deploy"         = { Version = "2012-10-17", Statement = [for st in local.ci_deploy_policy.Statement : st if !contains(local.ci_deploy_account_sids, st.Sid)] }
    "ci-deploy-account" = { Version = "2012-10-17", Statement = [for st in local.ci_deploy_policy.Statement : st if contains(local.ci_deploy_account_sids, st.Sid)] }
  }

  # The permissions boundary: per service, the union of the actions of every role ci-deploy may
  # create or change, on this deployment's resources. The roles' own policies (with their
  # conditions) stay the real grant; the boundary only caps what an edited policy could add.
  bounded_policies = concat(
    values(local.function_policies),
    [local.state_machine_policy, local.ci_rotate_policy],
    length(local.scheduled_state_machine_arns) > 0 ? [local.scheduler_policy] : [],
    length(local.age_check_schedules) > 0 ? [local.age_check_policy] : [],
  )
  bounded_actions = sort(distinct(flatten([
    for p in local.bounded_policies : [for s in p.Statement : flatten([s.Action]) if s.Effect == "Allow"]
  ])))
  boundary_resources = {
    secretsmanager = local.secret_patterns
    kms            = local.kms_key_arns
    iam            = length(local.iam_user_arns) > 0 ? local.iam_user_arns : ["${local.iam_arn}:user/${local.prefix}-none"]
    lambda         = concat(local.function_patterns, [for p in local.function_patterns : "${p}:*"])
    states = concat(local.state_machine_patterns, [
      "${local.arn_prefix}:states:${local.region}:${local.account_id}:execution:${local.prefix}-*",
    ])
    # The consumers the state machine redeploys (only present when a secret declares one).
    ecs = local.consumer_service_arns
    # Log delivery, X-Ray, PutMetricData and a function's network interfaces (in a VPC) have no
    # resource-level permissions.
    ec2        = ["*"]
    logs       = ["*"]
    xray       = ["*"]
    cloudwatch = ["*"]
  }
  # Writing a function's own log stream has resource-level permissions (log delivery of the
  # state machines does not): those two on the functions' log groups only.
  log_stream_actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
  boundary_policy = {
    Version = "2012-10-17"
    Statement = concat([
      for svc in sort(distinct([for a in local.bounded_actions : split(":", a)[0]])) : merge({
        Sid      = "AtMost${title(svc)}OfThisDeployment"
        Effect   = "Allow"
        Action   = [for a in local.bounded_actions : a if startswith(a, "${svc}:") && !contains(local.log_stream_actions, a)]
        Resource = local.boundary_resources[svc]
      }, svc == "secretsmanager" ? { Condition = { StringEquals = local.secret_scope } } : {})
      if length([for a in local.bounded_actions : a if startswith(a, "${svc}:") && !contains(local.log_stream_actions, a)]) > 0
      ], length(setintersection(local.bounded_actions, local.log_stream_actions)) == 0 ? [] : [{
        Sid      = "AtMostTheirOwnLogStreams"
        Effect   = "Allow"
        Action   = sort(setintersection(local.bounded_actions, local.log_stream_actions))
        Resource = [for f in local.function_names : "${local.function_log_group_arns[f]}:log-stream:*"]
    }])
  }
}

resource "aws_iam_policy" "boundary" {
  name        = "${local.prefix}-boundary"
  description = "rotor ${var.environment}: permissions boundary of every role of the deployment (at most what their policies allow, on this deployment's resources)"
  policy      = jsonencode(local.boundary_policy)
  tags        = local.tags
}

resource "aws_iam_policy" "ci_plan" {
  for_each = local.ci_plan_policies

  name        = "${local.prefix}-${each.key}"
  description = "rotor ${var.environment}: terraform plan of this deployment (reads only)${each.key == "ci-plan-account" ? ": IAM, state, placeholders" : ": regional resources"}"
  policy      = jsonencode(each.value)
  tags        = local.tags
}

resource "aws_iam_policy" "ci_deploy" {
  for_each = local.ci_deploy_policies

  name        = "${local.prefix}-${each.key}"
  description = "rotor ${var.environment}: terraform apply of this deployment (its resources by name; roles only under the boundary)${each.key == "ci-deploy-account" ? ": IAM, state" : ": regional resources"}"
  policy      = jsonencode(each.value)
  tags        = local.tags
}

resource "aws_iam_role" "ci_plan" {
  name        = "${local.prefix}-ci-plan"
  description = "rotor ${var.environment}: GitHub Actions (${var.github_repository}, pull requests) running terraform plan; reads only"
  assume_role_policy = jsonencode(merge(local.github_assume_role_policy, {
    Statement = [merge(local.github_assume_role_policy.Statement[0], {
      Sid = "GitHubActionsPullRequestsOfTheConfiguredRepositoryOnly"
      Condition = { StringEquals = {
        "${local.github_oidc_url}:aud" = "sts.amazonaws.com"
        "${local.github_oidc_url}:sub" = local.github_plan_subject
      } }
    })]
  }))
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy_attachment" "ci_plan" {
  for_each = { for k, p in aws_iam_policy.ci_plan : k => p.arn }

  role       = aws_iam_role.ci_plan.name
  policy_arn = each.value
}

resource "aws_iam_role" "ci_deploy" {
  name        = "${local.prefix}-ci-deploy"
  description = "rotor ${var.environment}: GitHub Actions (${var.github_repository}, environment ${local.github_deploy_environment}) running terraform apply"
  # Its own subject: a job of the routine environment (rotate, rollback) cannot assume it.
  assume_role_policy = jsonencode(merge(local.github_assume_role_policy, {
    Statement = [merge(local.github_assume_role_policy.Statement[0], {
      Sid = "GitHubActionsOfTheDeployEnvironmentOnly"
      Condition = { StringEquals = {
        "${local.github_oidc_url}:aud" = "sts.amazonaws.com"
        "${local.github_oidc_url}:sub" = local.github_deploy_subject
      } }
    })]
  }))
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy_attachment" "ci_deploy" {
  for_each = { for k, p in merge(aws_iam_policy.ci_plan, aws_iam_policy.ci_deploy) : k => p.arn }

  role       = aws_iam_role.ci_deploy.name
  policy_arn = each.value
}
