output "state_machine_arn" {
  description = "Rotation state machine (rotor rotate --aws, GitHub Actions)."
  value       = module.rotor.state_machine_arn
}

output "kms_key_arn" {
  description = "Key candidates are encrypted with (context {\"SecretId\": <secret name>})."
  value       = module.rotor.kms_key_arn
}

output "secret_arns" {
  description = "The managed secrets."
  value       = module.rotor.secret_arns
}

output "ci_rotate_role_arn" {
  description = "Role of the rotate workflow (GitHub environment development)."
  value       = module.rotor.ci_rotate_role_arn
}

output "ci_deploy_role_arn" {
  description = "Role of the deploy workflow's apply job (GitHub environment development, variable ROTOR_CI_DEPLOY_ROLE_ARN)."
  value       = module.rotor.ci_deploy_role_arn
}

output "ci_plan_role_arn" {
  description = "Role of the deploy workflow's plan job on pull requests (repository variable ROTOR_CI_PLAN_ROLE_ARN_DEVELOPMENT)."
  value       = module.rotor.ci_plan_role_arn
}

output "application_policy_arns" {
  description = "Each application's read policy (backend: the seven vendor keys only), to attach to its ECS task execution role."
  value       = module.rotor.application_policy_arns
}

output "application_policy_json" {
  description = "Each application's read policy document."
  value       = module.rotor.application_policy_json
}

output "alarm_topic_arn" {
  description = "Alarm topic (subscribe on-call to it)."
  value       = module.rotor.alarm_topic_arn
}
