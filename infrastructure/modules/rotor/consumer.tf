# The applications' read policies: one managed policy per entry of var.applications,
# `<prefix>-app-<name>-read-secrets`, allowing GetSecretValue/DescribeSecret on exactly that
# application's secrets (every region's replica, from this account only) and the key use that
# reading them needs (kms:Decrypt through Secrets Manager, under those secrets' encryption
# context only). One policy per application rather than one over every managed secret: an
# application must not be able to read what it does not use (the backend never reads the IAM
# deployer key, for instance). Attach each (output application_policy_arns) to the role that
# reads the values (for ECS `secrets[].valueFrom`: the task execution role), or copy its JSON
# (output application_policy_json). Creating or changing them is an administrator's apply
# (deploy.tf): they are attached outside the permissions boundary.

locals {
  application_secret_arns_all_regions = {
    for app, a in var.applications : app => flatten([
      for k in sort(distinct(a.secrets)) : local.secret_arns_all_regions_by_key[k]
    ])
  }

  application_policies = {
    for app, arns in local.application_secret_arns_all_regions : app => {
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "ReadTheApplicationsSecretsOfThisAccount"
          Effect   = "Allow"
          Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
          Resource = arns
          Condition = {
            StringEquals = { "aws:ResourceAccount" = local.account_id }
          }
        },
        {
          # Secrets Manager decrypts a value with the key for the caller, under the encryption
          # context {"SecretARN": <the secret's ARN>, "SecretVersionId": ...}: only these
          # secrets' ARNs, and only through Secrets Manager (no direct use of the key).
          Sid      = "DecryptTheApplicationsSecretsThroughSecretsManager"
          Effect   = "Allow"
          Action   = ["kms:Decrypt"]
          Resource = local.kms_key_arns
          Condition = {
            StringEquals = {
              "kms:ViaService"                  = local.secrets_manager_endpoints
              "kms:EncryptionContext:SecretARN" = arns
            }
          }
        },
      ]
    }
  }
}

resource "aws_iam_policy" "application" {
  for_each = var.applications

  name = "${local.prefix}-app-${each.key}-read-secrets"
  # Static: a policy's description cannot change in place (a new one would replace the policy
  # and break the attachments made elsewhere); the secrets are in the document.
  description = "rotor ${var.environment}: the ${each.key} application reads its secrets (GetSecretValue/DescribeSecret, same account)"
  policy      = jsonencode(local.application_policies[each.key])
  tags        = local.tags
}
