output "state_machine_arn" {
  description = "ARN of the rotation state machine: start it with {\"action\": \"rotate\" | \"rollback\", \"secret_id\": ...} (rotor rotate --aws, GitHub Actions)."
  value       = aws_sfn_state_machine.rotation.arn
}

output "state_machine_name" {
  description = "Name of the rotation state machine."
  value       = aws_sfn_state_machine.rotation.name
}

output "age_check_state_machine_arn" {
  description = "ARN of the age check state machine (null when no vendor-api-key secret has a schedule)."
  value       = try(aws_sfn_state_machine.age_check[0].arn, null)
}

output "function_arns" {
  description = "ARN of each of the six functions, by name (stage-pending, health-probe, promote, revoke-old-iam-key, rollback, audit-log)."
  value       = { for f, fn in aws_lambda_function.this : f => fn.arn }
}

output "function_role_arns" {
  description = "ARN of each function's own execution role, by function name."
  value       = { for f, r in aws_iam_role.function : f => r.arn }
}

output "kms_key_arn" {
  description = "ARN of the multi-Region primary KMS key (ROTOR_KMS_KEY_ID of the functions; `rotor rotate`, `rotor start` and `rotor encrypt` seal candidates with it under {\"SecretId\": <name>, \"Execution\": <execution name>, \"NotAfter\": <time>})."
  value       = aws_kms_key.this.arn
}

output "kms_key_description" {
  description = "Description of the KMS key (give it to modules/kms-replica so the replicas say the same)."
  value       = local.kms_key_description
}

output "kms_key_alias" {
  description = "Alias of the KMS key."
  value       = aws_kms_alias.this.name
}

output "secret_arns" {
  description = "ARN of each managed secret (primary region), by key of var.secrets."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "alarm_topic_arn" {
  description = "ARN of the (KMS-encrypted) SNS topic the alarms publish to."
  value       = aws_sns_topic.alarms.arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the GitHub Actions OIDC provider the CI roles trust."
  value       = local.github_oidc_provider_arn
}

output "ci_rotate_role_arn" {
  description = "Role for GitHub Actions to start rotations (never reads a secret)."
  value       = aws_iam_role.ci_rotate.arn
}

output "ci_deploy_role_arn" {
  description = "Role of the deploy workflow's apply job (terraform apply of this deployment; GitHub environment <github_deploy_environment>, default <github_environment>-deploy)."
  value       = aws_iam_role.ci_deploy.arn
}

output "application_policy_arns" {
  description = "ARN of each application's read policy (`<name>-<environment>-app-<key>-read-secrets`), by key of var.applications: attach it to the role that reads the secrets (ECS secrets[].valueFrom: the task execution role)."
  value       = { for app, p in aws_iam_policy.application : app => p.arn }
}

output "application_policy_json" {
  description = "Each application's read policy document (GetSecretValue/DescribeSecret on its secrets, same account; kms:Decrypt through Secrets Manager under their encryption context), by key of var.applications."
  value       = { for app, p in local.application_policies : app => jsonencode(p) }
}

output "iam_policies" {
  description = "Every identity policy this module writes, as JSON, by role (function names, rotation-sfn, age-check-sfn, scheduler, ci-rotate, ci-plan, ci-deploy, and app-<key> for each application's read policy; the ci-deploy role has both ci-plan and ci-deploy): for review and the least-privilege tests."
  value = merge(
    { for f, p in local.function_policies : f => jsonencode(p) },
    {
      "rotation-sfn" = jsonencode(local.state_machine_policy)
      "ci-rotate"    = jsonencode(local.ci_rotate_policy)
      "ci-plan"      = jsonencode(local.ci_plan_policy)
      "ci-deploy"    = jsonencode(local.ci_deploy_policy)
    },
    { for app, p in local.application_policies : "app-${app}" => jsonencode(p) },
    length(aws_iam_role.age_check) > 0 ? { "age-check-sfn" = jsonencode(local.age_check_policy) } : {},
    length(aws_iam_role.scheduler) > 0 ? { "scheduler" = jsonencode(local.scheduler_policy) } : {},
  )
}

output "ci_plan_role_arn" {
  description = "Role of the deploy workflow's plan job on pull requests (reads only)."
  value       = aws_iam_role.ci_plan.arn
}

output "permissions_boundary_arn" {
  description = "Permissions boundary every role of the deployment carries (ci-deploy can create roles only with it)."
  value       = aws_iam_policy.boundary.arn
}

output "permissions_boundary_json" {
  description = "The boundary's policy document."
  value       = jsonencode(local.boundary_policy)
}

output "cloudtrail" {
  description = "Where auditors find this deployment's AWS API calls: the trail's name and, when this module created it, its ARN and bucket (null when no trail is named)."
  value = local.trail_name == "" ? null : {
    name   = local.trail_name
    arn    = local.create_trail ? aws_cloudtrail.this[0].arn : null
    bucket = local.create_trail ? aws_s3_bucket.trail[0].id : null
  }
}
