# rotor: one Step Functions state machine, six Lambda functions, the secrets it rotates, their
# KMS key, schedules, alarms and the GitHub Actions roles. See infrastructure/README.md.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  primary_region  = var.regions[0]
  replica_regions = slice(var.regions, 1, length(var.regions))

  tags = merge(var.tags, {
    application = var.name
    environment = var.environment
  })

  # The six functions: functions/<name> in the repository, `<prefix>-<name>` on AWS. The keys
  # are the names of the state machine template's ${<key>_arn} placeholders (with '-' -> '_').
  function_names = ["stage-pending", "health-probe", "promote", "revoke-old-iam-key", "rollback", "audit-log"]
  function_full_names = {
    for f in local.function_names : f => "${local.prefix}-${f}"
  }
  # Built from the names rather than read from the resources so that the state machine's role
  # and definition can be planned before the functions exist (depends_on keeps the order).
  function_arns = {
    for f, n in local.function_full_names : f => "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${n}"
  }
  function_log_groups = {
    for f, n in local.function_full_names : f => "/aws/lambda/${n}"
  }
  function_log_group_arns = {
    for f, g in local.function_log_groups : f => "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${g}"
  }

  state_machine_name        = "${local.prefix}-rotation"
  state_machine_arn         = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  age_check_name            = "${local.prefix}-age-check"
  age_check_arn             = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.age_check_name}"
  definition_file           = coalesce(var.state_machine_definition_file, "${path.module}/../../../statemachine/rotation.asl.json")
  metric_namespace          = "Rotor"
  github_oidc_url           = "token.actions.githubusercontent.com"
  github_oidc_subject       = "repo:${var.github_repository}:environment:${var.github_environment}"
  github_deploy_environment = coalesce(var.github_deploy_environment, "${var.github_environment}-deploy")
  github_deploy_subject     = "repo:${var.github_repository}:environment:${local.github_deploy_environment}"
  github_oidc_provider_arn  = coalesce(var.github_oidc_provider_arn, try(aws_iam_openid_connect_provider.github[0].arn, null))
  secrets_manager_endpoints = [for r in var.regions : "secretsmanager.${r}.amazonaws.com"]

  # Every KMS key ARN of the deployment (primary and replicas): a secret's replica is read and
  # written with the key of its region.
  kms_key_arns = concat([aws_kms_key.this.arn], [for r in local.replica_regions : lookup(var.replica_kms_key_arns, r, "")])

  # Schedules: generated and iam-access-key secrets rotate unattended; vendor-api-key secrets
  # (the candidate comes from a person) get an age check instead.
  rotation_schedules  = { for k, s in var.secrets : k => s if s.schedule != null && s.kind != "vendor-api-key" }
  age_check_schedules = { for k, s in var.secrets : k => s if s.schedule != null && s.kind == "vendor-api-key" }
}
