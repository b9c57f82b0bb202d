# The applications' read policy (`app-read-secrets`): GetSecretValue/DescribeSecret on the
# managed secrets, from this account only, and the key use that reading them needs (through
# Secrets Manager, under these secrets' encryption context). Attach it (output
# consumer_policy_arn) to the roles of the applications that use the secrets, or copy its JSON
# (output consumer_policy_json) into theirs.

locals {
  consumer_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadTheManagedSecretsOfThisAccount"
        Effect   = "Allow"
        Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        Resource = local.secret_arns_all_regions
        Condition = {
          StringEquals = { "aws:ResourceAccount" = local.account_id }
        }
      },
      local.statement_secrets_via_kms_decrypt,
    ]
  }
}

resource "aws_iam_policy" "consumer" {
  count = var.create_consumer_policy ? 1 : 0

  name        = "${local.prefix}-app-read-secrets"
  description = "rotor ${var.environment}: read the secrets rotor manages (GetSecretValue/DescribeSecret, same account)"
  policy      = jsonencode(local.consumer_policy)
  tags        = local.tags
}
