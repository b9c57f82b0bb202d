# Example: the IAM side of the backend's ECS Fargate service in development (task-definition.json
# beside this file). Not part of rotor's deployment; a sketch of what the application's own
# Terraform does with rotor's output.
#
# ECS reads `containerDefinitions[].secrets[].valueFrom` with the task EXECUTION role, once, when
# a task starts (the container never calls Secrets Manager): so the execution role gets rotor's
# read policy for the backend, application_policy_arns["backend"] (the seven vendor keys only:
# GetSecretValue/DescribeSecret on them, kms:Decrypt through Secrets Manager under their
# encryption context). The task role, which the application's code runs with, gets none of it.
#
# In the environment's own root (infrastructure/environments/development) the attachment is
# simply
#   policy_arn = module.rotor.application_policy_arns["backend"]
# Standalone, as here, pass the output in:
#   terraform -chdir=infrastructure/environments/development output -json application_policy_arns
#   terraform -chdir=examples/ecs apply -var backend_read_policy_arn=arn:aws:iam::<account>:policy/rotor-development-app-backend-read-secrets

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Region of the backend's cluster: rotor's primary region (the development environment's var.region)."
  type        = string
  default     = "us-east-1"
}

variable "backend_read_policy_arn" {
  description = "rotor's application_policy_arns[\"backend\"] of the development environment (the policy rotor-development-app-backend-read-secrets)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/rotor-development-app-backend-read-secrets$", var.backend_read_policy_arn))
    error_message = "backend_read_policy_arn must be the ARN of rotor-development-app-backend-read-secrets (terraform output application_policy_arns of infrastructure/environments/development)."
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # ECS assumes both roles for tasks of this account only (AWS's confused-deputy guidance for
  # ECS task roles).
  ecs_tasks_trust = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:*" }
      }
    }]
  }
}

# The execution role: pulls the image, writes the logs, and reads the secrets into the
# container's environment when a task starts.
resource "aws_iam_role" "execution" {
  name                 = "backend-development-ecs-execution"
  description          = "ECS task execution role of the backend (development): image, logs, and rotor's backend secrets for valueFrom"
  assume_role_policy   = jsonencode(local.ecs_tasks_trust)
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "execution_reads_the_backends_secrets" {
  role       = aws_iam_role.execution.name
  policy_arn = var.backend_read_policy_arn
}

resource "aws_iam_role_policy_attachment" "execution_pulls_and_logs" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The task role: what the backend's code may call. Nothing of Secrets Manager: the keys are
# already in its environment.
resource "aws_iam_role" "task" {
  name                 = "backend-development-ecs-task"
  description          = "ECS task role of the backend (development): no access to rotor's secrets"
  assume_role_policy   = jsonencode(local.ecs_tasks_trust)
  max_session_duration = 3600
}

output "execution_role_arn" {
  description = "executionRoleArn of task-definition.json."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "taskRoleArn of task-definition.json."
  value       = aws_iam_role.task.arn
}
