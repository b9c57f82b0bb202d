# One Secrets Manager secret per entry of var.secrets. Its rotor policy is its `rotor:*` tags
# (crates/core/src/policy.rs reads exactly these keys). No aws_secretsmanager_secret_rotation:
# Secrets Manager's rotation protocol (createSecret/setSecret/testSecret/finishSecret) is not
# what rotor's functions speak; the state machine drives PutSecretValue/UpdateSecretVersionStage
# itself, started by the schedules below, `rotor rotate` or GitHub Actions.

locals {
  secret_policy_tags = {
    for k, s in var.secrets : k => merge(
      { "rotor:kind" = s.kind },
      s.probe == null ? {} : { "rotor:probe" = s.probe },
      s.probe_url == null ? {} : { "rotor:probe-url" = s.probe_url },
      s.app_health_url == null ? {} : { "rotor:app-health-url" = s.app_health_url },
      s.wait_propagation_seconds == null ? {} : { "rotor:wait-propagation-seconds" = tostring(s.wait_propagation_seconds) },
      s.wait_consumers_seconds == null ? {} : { "rotor:wait-consumers-seconds" = tostring(s.wait_consumers_seconds) },
      s.grace_seconds == null ? {} : { "rotor:grace-seconds" = tostring(s.grace_seconds) },
      s.iam_user == null ? {} : { "rotor:iam-user" = s.iam_user },
      s.iam_probe_action == null ? {} : { "rotor:iam-probe-action" = s.iam_probe_action },
      s.length == null ? {} : { "rotor:length" = tostring(s.length) },
      s.charset == null ? {} : { "rotor:charset" = s.charset },
      # The consumers by name, as the state machine passes them to ECS (Cluster, Service):
      # service/<cluster>/<service> of each long-format ARN -> ecs:<cluster>/<service>.
      length(s.consumers) == 0 ? {} : { "rotor:consumers" = join(",", [for c in s.consumers : "ecs:${join("/", regex("^arn:[^:]+:ecs:[^:]+:[0-9]+:service/([^/]+)/([^/]+)$", c))}"]) },
      s.consumer_timeout_seconds == null ? {} : { "rotor:consumer-timeout-seconds" = tostring(s.consumer_timeout_seconds) },
      s.consumer_poll_seconds == null ? {} : { "rotor:consumer-poll-seconds" = tostring(s.consumer_poll_seconds) },
    )
  }

  # Every ECS service a secret declares as a consumer (rotor:consumers), once: what the state
  # machine's role may redeploy (stepfunctions.tf), and nothing else.
  consumer_service_arns = sort(distinct(flatten([for s in values(var.secrets) : s.consumers])))

  # IAM users whose access keys rotor rotates (iam-access-key secrets), as ARNs.
  iam_user_arns = distinct([
    for s in values(var.secrets) : "arn:${local.partition}:iam::${local.account_id}:user${s.iam_user_path}${s.iam_user}"
    if s.kind == "iam-access-key"
  ])

  secret_names = sort([for s in values(var.secrets) : s.name])
  secret_arns  = [for k in sort(keys(var.secrets)) : aws_secretsmanager_secret.this[k].arn]
  # The secrets' replicas have the same name in every region, with another region in the ARN.
  secret_arns_all_regions_by_key = {
    for k in keys(var.secrets) : k => [for r in var.regions : replace(aws_secretsmanager_secret.this[k].arn, ":${local.primary_region}:", ":${r}:")]
  }
  secret_arns_all_regions = flatten([for k in sort(keys(var.secrets)) : local.secret_arns_all_regions_by_key[k]])
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Rotated by rotor's state machine, started by EventBridge Scheduler (schedules.tf), rotor rotate or CI, not by Secrets Manager's RotateSecret: that needs a function speaking the createSecret/setSecret/testSecret/finishSecret protocol, which rotor's functions do not.
  for_each = var.secrets

  name                    = each.value.name
  description             = each.value.description != "" ? each.value.description : "rotor ${var.environment}: ${each.value.kind} ${each.key}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = merge(local.tags, local.secret_policy_tags[each.key])

  dynamic "replica" {
    for_each = local.replica_regions
    content {
      region     = replica.value
      kms_key_id = lookup(var.replica_kms_key_arns, replica.value, null)
    }
  }

  lifecycle {
    precondition {
      condition     = local.region == local.primary_region
      error_message = "The AWS provider's region (${local.region}) must be the first of regions (${local.primary_region})."
    }
  }
}

# The first version: a placeholder that is not a credential. Its own label `rotor-bootstrap`
# keeps it from ever being purged, and Secrets Manager also puts AWSCURRENT on the first version
# of a secret, so the first rotation (generated, iam-access-key) or `rotor rotate` with the real
# key (vendor-api-key) finds an AWSCURRENT to replace. After that Terraform never touches the
# value: rotations move the labels and write new versions, which Terraform ignores.
resource "aws_secretsmanager_secret_version" "bootstrap" {
  for_each = var.secrets

  secret_id      = aws_secretsmanager_secret.this[each.key].id
  secret_string  = "rotor-bootstrap-placeholder: not a credential; replaced by the first rotation"
  version_stages = ["rotor-bootstrap"]

  lifecycle {
    ignore_changes = [secret_string, secret_binary, version_stages]
  }
}

# A probe's destination and every other rule of a secret live in its rotor:* tags: whoever may
# tag the secret could point health-probe at a host of their own and receive the next key. So
# each secret's resource policy denies writing or removing rotor:* tags to every role of this
# deployment (ci-deploy included: a change of those tags is the administrator's apply), and,
# when administrator_role_arns is set, to everyone but those roles. Explicit Deny: no identity
# policy (and no future edit of one) can lift it.
locals {
  rotor_tag_writers_denied = (length(var.administrator_role_arns) > 0
    ? { ArnNotEquals = { "aws:PrincipalArn" = var.administrator_role_arns } }
    : { ArnLike = { "aws:PrincipalArn" = ["${local.iam_arn}:role/${local.prefix}-*"] } }
  )
  # With vpc_endpoint_ids: a value is read only through those endpoints (the functions run in
  # the VPC; the consumers must read there too), except by the administrators (break glass, an
  # in-process `rotor rotate` from a laptop). aws:SourceVpce is absent from a request that does
  # not come through an endpoint, and a negated operator on an absent key matches: denied.
  # GetSecretValue only: ci-rotate's DescribeSecret/ListSecretVersionIds from GitHub's runners
  # read no value and stay possible.
  vpc_only_reads = length(var.vpc_endpoint_ids) == 0 ? [] : [{
    Sid       = "ReadValuesOnlyThroughTheVpcEndpoints"
    Effect    = "Deny"
    Principal = "*"
    Action    = ["secretsmanager:GetSecretValue"]
    Resource  = "*"
    Condition = merge(
      { StringNotEquals = { "aws:SourceVpce" = var.vpc_endpoint_ids } },
      length(var.administrator_role_arns) > 0 ? { ArnNotEquals = { "aws:PrincipalArn" = var.administrator_role_arns } } : {},
    )
  }]
  secret_resource_policies = {
    for k in keys(var.secrets) : k => {
      Version = "2012-10-17"
      Statement = concat([{
        Sid       = "OnlyTheAdministratorsWriteRotorTags"
        Effect    = "Deny"
        Principal = "*"
        Action    = ["secretsmanager:TagResource", "secretsmanager:UntagResource"]
        Resource  = "*"
        Condition = merge(local.rotor_tag_writers_denied, {
          "ForAnyValue:StringLike" = { "aws:TagKeys" = ["rotor:*"] }
        })
      }], local.vpc_only_reads)
    }
  }
}

resource "aws_secretsmanager_secret_policy" "this" {
  for_each = var.secrets

  secret_arn          = aws_secretsmanager_secret.this[each.key].arn
  policy              = jsonencode(local.secret_resource_policies[each.key])
  block_public_policy = true
}
