#!/usr/bin/env python3
"""Start moto's server with the Step Functions operations Terraform needs.

(And two fixes Terraform needs for multi-Region deployments: _patch_kms, _patch_secretsmanager;
_play_ecs_rollouts, the ECS rollouts moto does not run, for the services a test tags to ask
for it; and, when ROTOR_CALL_LOG_DIR is set, _record_calls: every AWS call as one JSON line,
for the permission check, scripts/permissions.py.)

moto 5.2.5 does not implement ValidateStateMachineDefinition nor
ListStateMachineVersions, and the Terraform AWS provider calls both when it
creates or reads an `aws_sfn_state_machine`. moto dispatches an SFN request to
the method of `StepFunctionResponse` named after the X-Amz-Target operation in
snake_case (`BaseResponse.call_action`, which looks the name up with
`inspect.getmembers` on every request), so adding two methods to the class
before the server starts is enough. Results are serialised against botocore's
SFN output shapes, hence `ActionResult`.

Usage: moto_launcher.py PORT   (binds 127.0.0.1; sets MOTO_PORT=PORT, which
moto's Step Functions interpreter uses to call back into the server).
"""

import os
import sys


def _patch_stepfunctions() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self):  # noqa: ANN001, ANN202
        # No real validation: asl-validator and rotor-asl do that in the tests.
        return ActionResult({"result": "OK", "diagnostics": []})

    def list_state_machine_versions(self):  # noqa: ANN001, ANN202
        # moto does not model published versions; an empty list is what AWS
        # answers for a state machine that was never published.
        return ActionResult({"stateMachineVersions": []})

    for fn in (validate_state_machine_definition, list_state_machine_versions):
        if fn.__name__ not in StepFunctionResponse.__dict__:
            setattr(StepFunctionResponse, fn.__name__, fn)


def _patch_kms() -> None:
    """Give a multi-Region replica key its own MultiRegionConfiguration.

    moto 5.2.5's `KmsBackend.replicate_key` makes the replica a shallow copy of the primary, so
    both share one `multi_region_configuration` dict; `describe_key` on the replica then writes
    MultiRegionKeyType=REPLICA into it and the primary reads as a replica too (the Terraform
    provider refuses to refresh an `aws_kms_replica_key` whose primary "is not a multi-Region
    primary key"). AWS keeps one configuration per key: PRIMARY on the primary, REPLICA on each
    replica, the same PrimaryKey and ReplicaKeys lists.
    """
    from copy import deepcopy

    from moto.kms.models import KmsBackend

    if getattr(KmsBackend.replicate_key, "_rotor_patched", False):
        return
    original = KmsBackend.replicate_key

    def replicate_key(self, key_id, replica_region):  # noqa: ANN001, ANN202
        primary = self.keys[self.get_key_id(key_id)]
        replica = original(self, key_id, replica_region)
        if primary.multi_region:
            primary.multi_region_configuration["MultiRegionKeyType"] = "PRIMARY"
            replica.multi_region_configuration = deepcopy(primary.multi_region_configuration)
            replica.multi_region_configuration["MultiRegionKeyType"] = "REPLICA"
        return replica

    replicate_key._rotor_patched = True  # type: ignore[attr-defined]
    KmsBackend.replicate_key = replicate_key


def _patch_secretsmanager() -> None:
    """Keep the KMS key a secret's replica is encrypted with.

    moto 5.2.5 records every replica (CreateSecret AddReplicaRegions, ReplicateSecretToRegions)
    with KmsKeyId alias/aws/secretsmanager whatever the request said, so a Terraform
    `aws_secretsmanager_secret` whose `replica` names a customer managed key never converges
    (every plan wants to replace the replica). AWS answers the KmsKeyId that was asked for.
    """
    from moto.secretsmanager.models import FakeSecret

    if getattr(FakeSecret.create_replicas, "_rotor_patched", False):
        return
    original = FakeSecret.create_replicas

    def create_replicas(self, replica_regions, force_overwrite):  # noqa: ANN001, ANN202
        replicas = original(self, replica_regions, force_overwrite)
        for config, replica in zip(replica_regions or [], replicas):
            if config.get("KmsKeyId"):
                replica.config["KmsKeyId"] = config["KmsKeyId"]
        return replicas

    create_replicas._rotor_patched = True  # type: ignore[attr-defined]
    FakeSecret.create_replicas = create_replicas


# Request fields the permission check needs: names and ids, never a value. SecretString,
# SecretBinary, Plaintext, CiphertextBlob and every other field are never written.
_RECORDED_FIELDS = (
    "SecretId", "VersionStage", "VersionId", "VersionStages", "MoveToVersionId",
    "RemoveFromVersionId", "ClientRequestToken", "KmsKeyId", "KeyId", "EncryptionContext",
    "UserName", "AccessKeyId", "Status", "Namespace", "Name", "TagKeys",
    "stateMachineArn", "executionArn", "name", "FunctionName", "RoleName", "PolicyArn",
    "PolicyName", "logGroupName", "GroupName", "TopicArn", "AlarmNames", "ResourceArn",
    "resourceArn", "Filters", "IncludePlannedDeletionVersions", "statusFilter", "SubscriptionArn",
    "ResourceARN", "OpenIDConnectProviderArn", "Resource", "AliasName", "TargetKeyId", "Role",
    "roleArn", "Target", "KMSKeyArn", "KmsKeyArn", "Qualifier", "Arn", "PermissionsBoundary",
    "encryptionConfiguration", "AlarmName", "groupName",
)


def _play_ecs_rollouts() -> None:
    """Play the rollout of an ECS service a test tagged `rotor-play:rollout`, openly.

    moto runs no tasks: after CreateService or UpdateService(forceNewDeployment) the PRIMARY
    deployment stays `rolloutState: IN_PROGRESS` with `runningCount: 0` for ever (and moto 5.2.5
    keeps one deployment, renaming it on a forced deployment), so no consumer refresh could ever
    complete. For a service tagged `rotor-play:rollout` = `COMPLETED` or `FAILED` (and optionally
    `rotor-play:after-looks` = N, default 2), every forced deployment starts IN_PROGRESS with no
    task running, and the N-th DescribeServices that sees it settles it: COMPLETED with
    `runningCount = desiredCount`, or FAILED as the deployment circuit breaker reports it.
    Services without the tag are moto's own.
    """
    from moto.ecs.models import EC2ContainerServiceBackend

    if getattr(EC2ContainerServiceBackend.describe_services, "_rotor_play", False):
        return
    original_describe = EC2ContainerServiceBackend.describe_services
    original_update = EC2ContainerServiceBackend.update_service
    looks: dict = {}

    def play(service):  # noqa: ANN001, ANN202
        tags = {t.get("key"): t.get("value") for t in (service.tags or [])}
        state = tags.get("rotor-play:rollout")
        try:
            after = max(int(tags.get("rotor-play:after-looks", "2")), 1)
        except ValueError:
            after = 2
        return (state if state in ("COMPLETED", "FAILED") else None), after

    def update_service(self, service_properties):  # noqa: ANN001, ANN202
        force = service_properties.get("force_new_deployment", False)
        service = original_update(self, service_properties)
        state, _ = play(service)
        if state and force and service.deployments:
            d = service.deployments[0]
            d.update(rolloutState="IN_PROGRESS", runningCount=0, pendingCount=service.desired_count,
                     failedTasks=0, rolloutStateReason="ECS deployment %s in progress." % d["id"])
            service.running_count, service.pending_count = 0, service.desired_count
        return service

    def describe_services(self, cluster_str, service_names_or_arns):  # noqa: ANN001, ANN202
        from moto.core.utils import utcnow

        services, failures = original_describe(self, cluster_str, service_names_or_arns)
        for service in services:
            state, after = play(service)
            if not state or not service.deployments:
                continue
            d = service.deployments[0]
            if d.get("rolloutState") != "IN_PROGRESS":
                continue
            looks[d["id"]] = looks.get(d["id"], 0) + 1
            if looks[d["id"]] < after:
                continue
            if state == "COMPLETED":
                d.update(rolloutState="COMPLETED", runningCount=service.desired_count, pendingCount=0,
                         rolloutStateReason="ECS deployment %s completed." % d["id"], updatedAt=utcnow())
                service.running_count, service.pending_count = service.desired_count, 0
            else:
                d.update(rolloutState="FAILED", runningCount=0, pendingCount=0, failedTasks=service.desired_count,
                         rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.", updatedAt=utcnow())
        return services, failures

    describe_services._rotor_play = True  # type: ignore[attr-defined]
    EC2ContainerServiceBackend.update_service = update_service
    EC2ContainerServiceBackend.describe_services = describe_services


def _record_calls(directory: str) -> None:
    """Append every AWS call moto answers to DIRECTORY/calls-<pid>.jsonl.

    One line per call: the access key id it was signed with (the tests sign each principal's
    calls with a key named after it, tests/support/principals.rs), service, action, region,
    account, HTTP status, the non-secret request fields above, and what the call touched as
    moto's own state knew it at that moment (a secret's ARN, tags, KMS key and resource policy;
    a KMS key's ARN), so the check can evaluate the call after the test has deleted it.
    """
    import json
    import re
    import threading
    import time

    from moto.core.responses import BaseResponse

    if getattr(BaseResponse.call_action, "_rotor_recording", False):
        return
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "calls-%d.jsonl" % os.getpid())
    lock = threading.Lock()
    original = BaseResponse.call_action

    def request_fields(self) -> dict:  # noqa: ANN001
        found: dict = {}
        sources = []
        params = getattr(self, "params", None)
        if isinstance(params, dict):
            sources.append(params)
        try:
            body = json.loads(self.body) if self.body else None
            if isinstance(body, dict):
                sources.append(body)
        except (ValueError, TypeError, UnicodeDecodeError):
            pass
        query = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in (self.querystring or {}).items()}
        sources.append(query)
        uri = getattr(self, "uri_match", None)
        if isinstance(uri, dict):
            sources.append(uri)
        for source in sources:
            for field in _RECORDED_FIELDS:
                if field in source and field not in found:
                    found[field] = source[field]
            # Query-protocol lists: TagKeys.member.1 ...
            for key, value in source.items():
                if isinstance(key, str) and key.startswith("TagKeys.member."):
                    found.setdefault("TagKeys", []).append(value)
        # A schedule's target: which state machine, as which role (its Input holds ids only,
        # but is not needed).
        if isinstance(found.get("Target"), dict):
            found["Target"] = {k: found["Target"].get(k) for k in ("Arn", "RoleArn")}
        return found

    def key_owner(account: str, key: str) -> str | None:
        # With moto's authentication on (tests/iam_moto.rs) calls are signed with real moto
        # keys: the IAM user that owns the key names the principal.
        try:
            from moto.iam.models import iam_backends

            for user in iam_backends[account]["global"].users.values():
                if any(k.access_key_id == key for k in user.access_keys):
                    return user.name
        except Exception:  # noqa: BLE001
            pass
        return None

    def touched(service: str, account: str, region: str, fields: dict) -> dict:
        out: dict = {}
        try:
            if service == "secretsmanager" and fields.get("SecretId"):
                from moto.secretsmanager.models import secretsmanager_backends

                secret = secretsmanager_backends[account][region].secrets.get(fields["SecretId"])
                if secret is not None:
                    out["secret_arn"] = secret.arn
                    out["secret_name"] = secret.name
                    out["secret_tags"] = {t["Key"]: t["Value"] for t in (secret.tags or [])}
                    out["secret_kms_key_id"] = getattr(secret, "kms_key_id", None)
                    out["secret_policy"] = getattr(secret, "policy", None)
            if service == "iam" and fields.get("AccessKeyId") and not fields.get("UserName"):
                # GetAccessKeyLastUsed names the key only: its resource is the key's user.
                owner = key_owner(account, fields["AccessKeyId"])
                if owner:
                    out["key_owner"] = owner
            if service == "kms" and fields.get("KeyId"):
                from moto.kms.models import kms_backends

                backend = kms_backends[account][region]
                key = backend.keys.get(backend.any_id_to_key_id(fields["KeyId"]))
                if key is not None:
                    out["key_arn"] = key.arn
        except Exception as e:  # noqa: BLE001 - a record without context is still a record
            out["touched_error"] = repr(e)
        return out

    credential = re.compile(r"Credential=([^/,\s]+)/")

    def access_key(self) -> str:  # noqa: ANN001
        # moto's own get_access_key only knows AKIA/ASIA-shaped keys.
        found = credential.search(self.headers.get("Authorization", "") or "")
        return found.group(1) if found else self.get_access_key()

    def call_action(self):  # noqa: ANN001, ANN202
        # What the call touches as it was when the call was authorised (before a tag write or a
        # delete), what it created afterwards.
        try:
            before = touched(self.boto3_service_name, self.current_account, self.region, request_fields(self))
        except Exception:  # noqa: BLE001
            before = {}
        result = original(self)
        try:
            service = self.boto3_service_name
            action = self._get_action()
            account = self.current_account
            region = self.region
            fields = request_fields(self)
            status = result[0] if isinstance(result, tuple) else 200
            entry = {
                "t": time.time(),
                "key": access_key(self),
                "service": service,
                "action": action,
                "region": region,
                "account": account,
                "status": int(status),
                "fields": fields,
            }
            entry.update(before or touched(service, account, region, fields))
            if entry["key"].startswith(("AKIA", "ASIA")):
                owner = key_owner(account, entry["key"])
                if owner:
                    entry["key_user"] = owner
            if service == "kms" and action in ("Decrypt", "Encrypt", "GenerateDataKey") and "key_arn" not in entry:
                # Decrypt names its key in the answer only.
                try:
                    answer = json.loads(result[2])
                    if answer.get("KeyId"):
                        entry["key_arn"] = answer["KeyId"]
                except Exception:  # noqa: BLE001
                    pass
            line = json.dumps(entry, sort_keys=True, default=str)
            with lock, open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except Exception as e:  # noqa: BLE001 - recording never breaks a call
            sys.stderr.write("moto_launcher: not recorded: %r\n" % (e,))
        return result

    call_action._rotor_recording = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: moto_launcher.py PORT")
    port = sys.argv[1]
    # Must be set before moto reads it: the SFN interpreter's Lambda calls go
    # to http://localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = port

    _patch_stepfunctions()
    _patch_kms()
    _patch_secretsmanager()
    _play_ecs_rollouts()
    if os.environ.get("ROTOR_CALL_LOG_DIR"):
        _record_calls(os.environ["ROTOR_CALL_LOG_DIR"])

    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
