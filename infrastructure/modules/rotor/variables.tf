variable "name" {
  description = "Name every resource of this deployment starts with (followed by the environment): `<name>-<environment>-...`."
  type        = string
  default     = "rotor"

  validation {
    # No '-': the CI roles reach this deployment by the names "<name>-<environment>-*", which
    # must never match another deployment's (rotor-prod-* would match rotor-prod-eu-*).
    condition     = can(regex("^[a-z][a-z0-9]{1,15}$", var.name))
    error_message = "name must be 2 to 16 characters: lower-case letters and digits, starting with a letter (no '-': names of other deployments must never match <name>-<environment>-*)."
  }
}

variable "environment" {
  description = "Environment name (development, staging, production, ...): part of every resource name and the value of the `environment` tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,19}$", var.environment))
    error_message = "environment must be 2 to 20 characters: lower-case letters and digits, starting with a letter (no '-': names of other deployments must never match <name>-<environment>-*)."
  }
}

variable "regions" {
  description = "Regions of this deployment. The first is the primary (the provider's region): the state machine, the functions and the primary KMS key live there. Every further region gets a replica of the KMS key (module `modules/kms-replica`, one instance per region, its ARN passed in `replica_kms_key_arns`) and a replica of every secret."
  type        = list(string)

  validation {
    condition     = length(var.regions) >= 1 && length(var.regions) == length(distinct(var.regions))
    error_message = "regions must list at least the primary region, each region once."
  }

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))])
    error_message = "Every entry of regions must be an AWS region name such as us-east-1."
  }
}

variable "replica_kms_key_arns" {
  description = "ARN of the KMS replica key in each extra region (every region of `regions` but the first), from `modules/kms-replica`: the secrets' replicas there are encrypted with it. Passing the module's output (not a computed string) makes Terraform create the replica key before the secret replicas."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for r, arn in var.replica_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:${r}:[0-9]{12}:key/mrk-[0-9a-f-]{32,36}$", arn))])
    error_message = "Each replica_kms_key_arns entry must be a multi-Region key ARN (key/mrk-...) in the region of its map key."
  }

  validation {
    condition     = sort(keys(var.replica_kms_key_arns)) == sort(slice(var.regions, 1, length(var.regions)))
    error_message = "replica_kms_key_arns must hold one key ARN for each extra region of regions (every region but the first), from modules/kms-replica."
  }
}

variable "secrets" {
  description = <<-EOT
    The secrets rotor manages, keyed by a short id (used in resource names). Each becomes one
    Secrets Manager secret whose rotor policy is written as its `rotor:*` tags, replicated to every
    extra region and encrypted with the deployment's KMS key. Terraform creates the secret with a
    placeholder first version (label `rotor-bootstrap`, which Secrets Manager also marks
    AWSCURRENT) and never manages its value afterwards: rotations and operators do.
    - name: the secret's name, e.g. `myapp/production/openai_api_key`.
    - kind: vendor-api-key | generated | iam-access-key.
    - probe: vendor probe preset (openai, polygon, finnhub, alpha-vantage, alchemy, newsapi,
      walletconnect) or `http` with `probe_url`; required for vendor-api-key.
    - app_health_url: the application's health URL probed after promotion (absent: skipped).
    - wait_propagation_seconds, wait_consumers_seconds, grace_seconds: the state machine's waits
      (absent: rotor's defaults 10, 60, 3600).
    - iam_user, iam_user_path: the IAM user whose access key an iam-access-key secret holds.
    - iam_probe_action: a read-only call the new key must be permitted besides
      sts:GetCallerIdentity: iam:GetUser, secretsmanager:ListSecrets or kms:ListKeys.
    - length, charset: generated values (16-4096; alphanumeric | hex | url-safe).
    - schedule: EventBridge Scheduler expression (rate(...), cron(...)); absent: no schedule.
      generated and iam-access-key secrets are rotated on it; vendor-api-key secrets (whose
      candidate comes from a person) get an age check that puts the metric SecretAgeDays.
    - max_age_days: SecretAgeDays above this raises the age alarm (vendor-api-key with a schedule).
    - consumers: the ECS services that read the secret (task definitions' `secrets[].valueFrom`),
      as service ARNs in the long format `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`
      in the primary region and this account. A task reads the value only when it starts, so
      after promoting a new version the state machine redeploys each of them (UpdateService with
      forceNewDeployment, then DescribeServices until the rollout completes); written as the tag
      `rotor:consumers` (`ecs:<cluster>/<service>`, comma-separated; absent when empty), and the
      state machine's role may UpdateService/DescribeServices exactly these services.
    - consumer_timeout_seconds, consumer_poll_seconds: how long one consumer's redeployment may
      take before the rotation is reverted, and the pause between two DescribeServices (absent:
      rotor's defaults 900 and 15; tags `rotor:consumer-timeout-seconds`,
      `rotor:consumer-poll-seconds`).
  EOT
  type = map(object({
    name                     = string
    description              = optional(string, "")
    kind                     = string
    probe                    = optional(string)
    probe_url                = optional(string)
    app_health_url           = optional(string)
    wait_propagation_seconds = optional(number)
    wait_consumers_seconds   = optional(number)
    grace_seconds            = optional(number)
    iam_user                 = optional(string)
    iam_user_path            = optional(string, "/")
    iam_probe_action         = optional(string)
    length                   = optional(number)
    charset                  = optional(string)
    schedule                 = optional(string)
    max_age_days             = optional(number, 90)
    consumers                = optional(list(string), [])
    consumer_timeout_seconds = optional(number)
    consumer_poll_seconds    = optional(number)
  }))

  validation {
    condition     = alltrue([for k, s in var.secrets : can(regex("^[a-z0-9][a-z0-9-]{0,31}$", k))])
    error_message = "Each key of secrets must be 1 to 32 characters: lower-case letters, digits and '-'."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", s.name))])
    error_message = "Each secret name must be 1 to 512 characters of A-Z a-z 0-9 / _ + = . @ -."
  }
  validation {
    condition     = length(distinct([for s in values(var.secrets) : s.name])) == length(var.secrets)
    error_message = "Two entries of secrets have the same name."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : contains(["vendor-api-key", "generated", "iam-access-key"], s.kind)])
    error_message = "kind must be vendor-api-key, generated or iam-access-key."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.probe == null || contains(["openai", "polygon", "finnhub", "alpha-vantage", "alchemy", "newsapi", "walletconnect", "http"], coalesce(s.probe, "-"))])
    error_message = "probe must be one of openai, polygon, finnhub, alpha-vantage, alchemy, newsapi, walletconnect, http."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.kind != "vendor-api-key" || s.probe != null])
    error_message = "A vendor-api-key secret needs a probe: a candidate must be proven before promotion."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.probe != "http" || s.probe_url != null])
    error_message = "probe \"http\" needs probe_url."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.kind != "iam-access-key" || s.iam_user != null])
    error_message = "An iam-access-key secret needs iam_user."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.iam_user == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", coalesce(s.iam_user, "-")))])
    error_message = "iam_user must be an IAM user name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -)."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : can(regex("^/([A-Za-z0-9+=,.@_-]+/)*$", s.iam_user_path))])
    error_message = "iam_user_path must start and end with '/' (default '/')."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.iam_probe_action == null || contains(["iam:GetUser", "secretsmanager:ListSecrets", "kms:ListKeys"], coalesce(s.iam_probe_action, "-"))])
    error_message = "iam_probe_action must be iam:GetUser, secretsmanager:ListSecrets or kms:ListKeys."
  }
  validation {
    # Tag values: Secrets Manager accepts letters, digits, spaces and _ . : / = + - @ only.
    condition = alltrue([for s in values(var.secrets) : alltrue([
      for u in compact([s.probe_url, s.app_health_url]) : can(regex("^https?://[A-Za-z0-9_.:/=+@-]+$", u))
    ])])
    error_message = "probe_url and app_health_url must be http:// or https:// URLs made of letters, digits and _ . : / = + - @ (tag values allow no '?', '&' or '%')."
  }
  validation {
    condition = alltrue([for s in values(var.secrets) : alltrue([
      for w in [s.wait_propagation_seconds, s.wait_consumers_seconds, s.grace_seconds] : w == null || (try(w >= 0 && w <= 31536000 && floor(w) == w, false))
    ])])
    error_message = "Waits are whole numbers of seconds from 0 to 31536000."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.length == null || try(s.length >= 16 && s.length <= 4096 && floor(s.length) == s.length, false)])
    error_message = "length must be a whole number from 16 to 4096."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.charset == null || contains(["alphanumeric", "hex", "url-safe"], coalesce(s.charset, "-"))])
    error_message = "charset must be alphanumeric, hex or url-safe."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.schedule == null || can(regex("^(rate|cron)\\(.+\\)$", coalesce(s.schedule, "-")))])
    error_message = "schedule must be an EventBridge Scheduler expression: rate(...) or cron(...)."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : s.max_age_days >= 1 && s.max_age_days <= 3650])
    error_message = "max_age_days must be from 1 to 3650."
  }
  validation {
    # The tag carries names (ecs:<cluster>/<service>), which the state machine resolves in its
    # own region and account: a service elsewhere would be granted but never redeployed.
    # (The account is checked against the provider's in stepfunctions.tf.) Long format only:
    # the short one (service/<service>) names no cluster.
    condition = alltrue(flatten([for k, s in var.secrets : [
      for c in s.consumers : can(regex("^arn:aws[a-z-]*:ecs:${var.regions[0]}:[0-9]{12}:service/[A-Za-z0-9_-]{1,255}/[A-Za-z0-9_-]{1,255}$", c))
    ]]))
    error_message = "Each entry of consumers must be an ECS service ARN in the long format arn:aws:ecs:${var.regions[0]}:<account>:service/<cluster>/<service> (the primary region; names of letters, digits, - and _). Not one: ${join(", ", flatten([for k, s in var.secrets : [for c in s.consumers : "secrets[\"${k}\"] ${jsonencode(c)}" if !can(regex("^arn:aws[a-z-]*:ecs:${var.regions[0]}:[0-9]{12}:service/[A-Za-z0-9_-]{1,255}/[A-Za-z0-9_-]{1,255}$", c))]]))}."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : length(distinct(s.consumers)) == length(s.consumers)])
    error_message = "A secret names the same consumer twice: ${join(", ", [for k, s in var.secrets : "secrets[\"${k}\"]" if length(distinct(s.consumers)) != length(s.consumers)])}."
  }
  validation {
    # Secrets Manager tag values hold at most 256 characters.
    condition = alltrue([for s in values(var.secrets) : length(join(",", [
      for c in s.consumers : "ecs:${join("/", slice(split("/", c), 1, length(split("/", c))))}"
    ])) <= 256])
    error_message = "The rotor:consumers tag (ecs:<cluster>/<service>, comma-separated) of a secret would be longer than the 256 characters of a tag value: ${join(", ", [for k, s in var.secrets : "secrets[\"${k}\"]" if length(join(",", [for c in s.consumers : "ecs:${join("/", slice(split("/", c), 1, length(split("/", c))))}"])) > 256])}; split the services over fewer names or shorter ones."
  }
  validation {
    condition = alltrue([for s in values(var.secrets) : alltrue([
      for w in [s.consumer_timeout_seconds, s.consumer_poll_seconds] : w == null || try(w >= 1 && w <= 86400 && floor(w) == w, false)
    ])])
    error_message = "consumer_timeout_seconds and consumer_poll_seconds are whole numbers of seconds from 1 to 86400."
  }
  validation {
    # rotor looks at each redeployment at most 1000 times (each look is about ten history
    # events; an execution has 25,000): crates/core/src/consumers.rs refuses more.
    condition     = alltrue([for s in values(var.secrets) : try(coalesce(s.consumer_poll_seconds, 15) < 1 || ceil(coalesce(s.consumer_timeout_seconds, 900) / coalesce(s.consumer_poll_seconds, 15)) <= 1000, true)])
    error_message = "consumer_timeout_seconds / consumer_poll_seconds (defaults 900 and 15) must be at most 1000 looks at a redeployment: poll less often."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : length(s.consumers) > 0 || (s.consumer_timeout_seconds == null && s.consumer_poll_seconds == null)])
    error_message = "consumer_timeout_seconds and consumer_poll_seconds are for a secret with consumers: ${join(", ", [for k, s in var.secrets : "secrets[\"${k}\"]" if length(s.consumers) == 0 && (s.consumer_timeout_seconds != null || s.consumer_poll_seconds != null)])}."
  }
}

variable "applications" {
  description = <<-EOT
    The applications that read the managed secrets, keyed by a short name: each gets its own
    managed policy `<name>-<environment>-app-<key>-read-secrets` (outputs application_policy_arns
    and application_policy_json) allowing secretsmanager:GetSecretValue and DescribeSecret on
    exactly its secrets (every region's replica, this account only) and kms:Decrypt only through
    Secrets Manager under those secrets' encryption context. Attach it to the role that reads
    the values: for ECS `secrets[].valueFrom`, the task *execution* role.
    - secrets: keys of `secrets` the application reads (an iam-access-key secret only when the
      application really uses that key).
  EOT
  type = map(object({
    secrets = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.applications) : can(regex("^[a-z0-9][a-z0-9-]{0,31}$", k))])
    error_message = "Each key of applications must be 1 to 32 characters: lower-case letters, digits and '-' (part of the policy's name)."
  }
  validation {
    condition     = alltrue([for a in values(var.applications) : length(a.secrets) > 0])
    error_message = "Each application must name at least one secret: ${join(", ", [for k, a in var.applications : k if length(a.secrets) == 0])}."
  }
  validation {
    condition     = alltrue(flatten([for a in values(var.applications) : [for s in a.secrets : contains(keys(var.secrets), s)]]))
    error_message = "An application names a secret that is not a key of secrets: ${join(", ", flatten([for k, a in var.applications : [for s in a.secrets : "applications[\"${k}\"] ${jsonencode(s)}" if !contains(keys(var.secrets), s)]]))}."
  }
}

variable "lambda_zip_dir" {
  description = "Folder holding `<function>.zip` for each of the six functions (and, from scripts/package, `<function>.bootstrap.sha256` and `manifest.json`): normally `target/lambda-zips` of the repository."
  type        = string

  validation {
    condition     = length(trimspace(var.lambda_zip_dir)) > 0
    error_message = "lambda_zip_dir must not be empty."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the functions: arm64 (Graviton, what scripts/package builds) or x86_64 (when the aarch64 Rust target could not be installed). Must match the zips' manifest.json."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of each function in MB (CPU scales with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be from 128 to 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each function in seconds (a vendor probe is an HTTP call with retries in the state machine, not in the function)."
  type        = number
  default     = 30

  validation {
    condition     = var.lambda_timeout_seconds >= 3 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds must be from 3 to 900."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrent executions of each function: caps what a runaway schedule can do and guarantees rotations can run."
  type        = number
  default     = 5

  validation {
    condition     = var.lambda_reserved_concurrency >= 1 && var.lambda_reserved_concurrency <= 100 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency
    error_message = "lambda_reserved_concurrency must be a whole number from 1 to 100."
  }
}

variable "log_level" {
  description = "RUST_LOG of the functions (tracing EnvFilter syntax), e.g. info or rotor=debug,info."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[A-Za-z0-9_:=,.-]+$", var.log_level))
    error_message = "log_level must be a tracing filter such as info or rotor=debug,info."
  }
}

variable "probe_allowed_hosts" {
  description = "Hosts, besides each vendor preset's own, that a candidate probe may be sent to (a rotor:probe-url override must be https:// and name one of them); the health-probe function's ROTOR_PROBE_ALLOWED_HOSTS. Empty: presets only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for h in var.probe_allowed_hosts : can(regex("^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*$", h))])
    error_message = "probe_allowed_hosts must be bare host names such as api.example.com (no scheme, port, path or wildcard)."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group (functions and state machines), in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least a year: 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key (and its replicas) are deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be from 7 to 30."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once: test environments only)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or from 7 to 30."
  }
}

variable "state_machine_definition_file" {
  description = "Path of rotor's Amazon States Language file, rendered with templatefile() and the six function ARNs. Default: statemachine/rotation.asl.json of the repository this module sits in."
  type        = string
  default     = null

  validation {
    condition     = var.state_machine_definition_file == null || fileexists(coalesce(var.state_machine_definition_file, "-"))
    error_message = "state_machine_definition_file must name an existing file."
  }
}

variable "github_repository" {
  description = "GitHub repository (`owner/name`) whose Actions may assume the ci-rotate and ci-deploy roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_environment" {
  description = "GitHub Actions environment of that repository whose jobs may assume the roles (the OIDC subject is repo:<repository>:environment:<environment>)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,255}$", var.github_environment))
    error_message = "github_environment must be a GitHub environment name (letters, digits, _ . -)."
  }
}

variable "github_deploy_environment" {
  description = "GitHub Actions environment whose jobs may assume ci-deploy (deploy.yml's apply job): a different subject from ci-rotate's, so the routine rotate and rollback jobs cannot deploy. Give it its own required reviewers and a deployment branch rule of the default branch only. Default: <github_environment>-deploy."
  type        = string
  default     = null

  validation {
    condition     = var.github_deploy_environment == null || can(regex("^[A-Za-z0-9_.-]{1,255}$", var.github_deploy_environment))
    error_message = "github_deploy_environment must be a GitHub environment name (letters, digits, _ . -)."
  }
  validation {
    condition     = var.github_deploy_environment != var.github_environment
    error_message = "github_deploy_environment must differ from github_environment: one token must not open both ci-rotate and ci-deploy."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing IAM OIDC provider for token.actions.githubusercontent.com (an account holds one per URL). Null: this module creates it."
  type        = string
  default     = null

  validation {
    condition     = var.github_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", coalesce(var.github_oidc_provider_arn, "-")))
    error_message = "github_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "terraform_state_bucket" {
  description = "S3 bucket of this deployment's Terraform state (the backend's `bucket`). ci-plan may read, ci-deploy read and write, exactly the state object and its lock file. Null: neither role gets state access (local state, or grant it elsewhere)."
  type        = string
  default     = null

  validation {
    condition     = var.terraform_state_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.terraform_state_bucket, "-")))
    error_message = "terraform_state_bucket must be an S3 bucket name (3-63 lower-case letters, digits, '.' and '-')."
  }
}

variable "terraform_state_key" {
  description = "The state object's key in terraform_state_bucket (the backend's `key`, e.g. rotor/production.tfstate)."
  type        = string
  default     = null

  validation {
    condition     = (var.terraform_state_key == null) == (var.terraform_state_bucket == null) && (var.terraform_state_key == null || can(regex("^[A-Za-z0-9!_.*'()/-]+$", coalesce(var.terraform_state_key, "-"))))
    error_message = "terraform_state_key must be set exactly when terraform_state_bucket is, and be an S3 key (letters, digits, / ! _ . * ' ( ) -)."
  }
}

variable "ci_rotate_reads_secret_metadata" {
  description = "Let ci-rotate DescribeSecret and ListSecretVersionIds the managed secrets and DescribeKey the key: metadata only (tags, KMS key id, version ids and labels), never a value. `rotor start` (the rotate and rollback workflows) makes exactly these reads before it starts an execution and stops when one is refused, so the workflows need them (default). false only for a deployment whose ci-rotate never runs `rotor start`."
  type        = bool
  default     = true
}

variable "administrator_role_arns" {
  description = "ARNs of the roles that administer this deployment (the administrator's terraform apply). Each managed secret's resource policy lets only these write or remove rotor:* tags (a probe URL is one); empty: every role except this deployment's own may (ci-deploy, ci-rotate and the functions never can)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.administrator_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+", a))])
    error_message = "administrator_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", a))])
    error_message = "alarm_email_addresses must be e-mail addresses."
  }
}

variable "tags" {
  description = "Tags added to every resource (secrets also carry their rotor:* policy tags)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "rotor:") && !startswith(k, "aws:")])
    error_message = "tags may not use the rotor: prefix (the secrets' policy) nor aws:."
  }
}

variable "vpc_endpoint_ids" {
  description = "Opt-in: the Secrets Manager interface VPC endpoints (vpce-...) through which the secrets' values may be read. When set, each managed secret's resource policy denies GetSecretValue that does not come through one of them (aws:SourceVpce) to everyone but administrator_role_arns, and the functions run in the VPC (subnet_ids and security_group_ids are then required). The consumers (ECS tasks) must read through these endpoints too."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.vpc_endpoint_ids : can(regex("^vpce-[0-9a-f]{8,17}$", id))])
    error_message = "vpc_endpoint_ids must be VPC endpoint ids (vpce- and 8 to 17 hex digits)."
  }
  validation {
    condition     = length(var.vpc_endpoint_ids) == 0 || length(var.subnet_ids) > 0
    error_message = "vpc_endpoint_ids needs subnet_ids and security_group_ids: the functions read the secrets, so they must run in the VPC whose endpoints the secrets' policy allows."
  }
}

variable "subnet_ids" {
  description = "Opt-in: private subnets the six functions run in (with security_group_ids). The subnets need a route to the vendor APIs the probes call (a NAT gateway) and to IAM (no VPC endpoint exists for IAM), and endpoints or a route for Secrets Manager, KMS, STS, CloudWatch and X-Ray."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "subnet_ids must be subnet ids (subnet- and 8 to 17 hex digits)."
  }
  validation {
    condition     = (length(var.subnet_ids) == 0) == (length(var.security_group_ids) == 0)
    error_message = "subnet_ids and security_group_ids go together: give both (the functions run in the VPC) or neither."
  }
}

variable "security_group_ids" {
  description = "Opt-in: security groups of the functions' network interfaces (with subnet_ids). Outbound HTTPS is all they need."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "security_group_ids must be security group ids (sg- and 8 to 17 hex digits)."
  }
}

variable "create_cloudtrail" {
  description = "Opt-in: create a multi-Region CloudTrail trail for this deployment (log file validation on, encrypted with the deployment's key, its own versioned bucket). An administrator's apply: ci-deploy may read the trail but never change, stop or delete it. Leave false when the account already has a trail, and name it in cloudtrail_name."
  type        = bool
  default     = false

  validation {
    condition     = !(var.create_cloudtrail && var.cloudtrail_name != "")
    error_message = "Give create_cloudtrail or cloudtrail_name (the account's existing trail), not both."
  }
}

variable "cloudtrail_name" {
  description = "The account's existing CloudTrail trail that records this deployment (output for auditors; nothing is created). Empty with create_cloudtrail = false: no trail is named."
  type        = string
  default     = ""

  validation {
    condition     = var.cloudtrail_name == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$", var.cloudtrail_name))
    error_message = "cloudtrail_name must be a trail name: 3 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "cloudtrail_retention_days" {
  description = "With create_cloudtrail: days the trail's log files (and their older versions) are kept."
  type        = number
  default     = 2557

  validation {
    condition     = var.cloudtrail_retention_days >= 90 && floor(var.cloudtrail_retention_days) == var.cloudtrail_retention_days
    error_message = "cloudtrail_retention_days must be a whole number of at least 90."
  }
}
