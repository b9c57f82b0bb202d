# GitHub Actions: the OIDC provider and ci-rotate, which only the configured repository's jobs in
# the configured environment can assume (subject repo:<owner>/<name>:environment:<env>).
#
# ci-rotate: starts rotations and reads their outcome. It may encrypt a candidate for one of
#   these secrets (kms:Encrypt, encryption context SecretId = the secret's name, Execution and
#   NotAfter: a candidate is sealed to one execution and a deadline) and use the key
#   for the rotation state machine's own data (StartExecution/DescribeExecution/
#   GetExecutionHistory on a state machine encrypted with a customer managed key need
#   kms:GenerateDataKey/kms:Decrypt under its context). Of Secrets Manager only the metadata
#   reads `rotor start` makes (DescribeSecret/ListSecretVersionIds, never a value; and
#   kms:DescribeKey of the key), as the permission check (scripts/permissions.py) proves: it can
#   never read a secret, and no key use under a secret's context: it can never decrypt a candidate.
#   Its policy is the administrator's: ci-deploy may neither change it nor pass the role.
# ci-deploy and ci-plan (Terraform from the deploy workflow) are in deploy.tf.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.github_oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
  # IAM validates GitHub's certificate through its trusted CAs; the list is still required
  # by the API in some partitions.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
  tags            = local.tags
}

locals {
  github_assume_role_policy = {
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GitHubActionsOfTheConfiguredRepositoryAndEnvironmentOnly"
      Effect    = "Allow"
      Principal = { Federated = local.github_oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.github_oidc_url}:aud" = "sts.amazonaws.com"
          "${local.github_oidc_url}:sub" = local.github_oidc_subject
        }
      }
    }]
  }

  ci_rotate_policy = {
    Version = "2012-10-17"
    Statement = concat(var.ci_rotate_reads_secret_metadata ? [
      {
        # `rotor start` reads the secret's policy (tags), its KMS key id and labels before it
        # starts anything (preflight; rollback's plan): metadata, never a value.
        Sid      = "ReadTheManagedSecretsMetadataNeverAValue"
        Effect   = "Allow"
        Action   = ["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
        Resource = local.secret_arns
      },
      {
        # ... and checks that the candidates' key exists before it encrypts under it.
        Sid      = "DescribeTheCandidatesKey"
        Effect   = "Allow"
        Action   = ["kms:DescribeKey"]
        Resource = [aws_kms_key.this.arn]
      },
      ] : [], [
      {
        Sid      = "StartRotations"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = [local.state_machine_arn]
      },
      {
        Sid      = "ReadTheOutcomeOfRotations"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:GetExecutionHistory"]
        Resource = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.state_machine_name}:*"]
      },
      {
        Sid      = "EncryptCandidatesForTheManagedSecretsOnly"
        Effect   = "Allow"
        Action   = ["kms:Encrypt"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringEquals                = { "kms:EncryptionContext:SecretId" = local.secret_names }
          "ForAllValues:StringEquals" = { "kms:EncryptionContextKeys" = local.candidate_context_keys }
          "Null"                      = local.candidate_context_present
        }
      },
      {
        Sid      = "UseTheKeyForTheRotationStateMachinesDataOnly"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.this.arn]
        Condition = {
          StringEquals = {
            "kms:EncryptionContext:aws:states:stateMachineArn" = local.state_machine_arn
            "kms:ViaService"                                   = "states.${local.region}.amazonaws.com"
          }
        }
      },
    ])
  }
}

resource "aws_iam_role" "ci_rotate" {
  name                 = "${local.prefix}-ci-rotate"
  description          = "rotor ${var.environment}: GitHub Actions (${var.github_repository}, environment ${var.github_environment}) starting rotations; never reads a secret"
  assume_role_policy   = jsonencode(local.github_assume_role_policy)
  permissions_boundary = aws_iam_policy.boundary.arn
  # 3 hours: the workflows wait for the execution (rotor start --wait --timeout 7200) under
  # credentials they ask for with role-duration-seconds 9000.
  max_session_duration = 10800
  tags                 = local.tags
}

resource "aws_iam_role_policy" "ci_rotate" {
  name   = "ci-rotate-least-privilege"
  role   = aws_iam_role.ci_rotate.id
  policy = jsonencode(local.ci_rotate_policy)
}
