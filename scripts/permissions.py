#!/usr/bin/env python3
"""The permission check: every AWS call the moto suites made as a deployed principal, evaluated
against that principal's policies as Terraform deployed them, with a real policy evaluator.

    permissions.py snapshot --endpoint URL --prefix rotor-ENV --out FILE
        Reads the deployment back from moto (tests/terraform.rs calls it after its apply):
        every role of the prefix (trust, inline and managed policies, permissions boundary),
        the KMS keys and their key policies, the secrets (tags, key, resource policy), the
        state machines (definition, role, encryption), the schedules and the functions.

    permissions.py check --deployment FILE --calls DIR [--report FILE]
        1. the evaluator's own checks against answers the AWS documentation gives;
        2. each recorded call (DIR/*.jsonl, written by scripts/moto_launcher.py with
           ROTOR_CALL_LOG_DIR) whose key names a principal of the deployment, with the calls
           AWS makes on that principal's behalf (Secrets Manager's and Step Functions' use of
           the KMS key), plus the calls the state machines' and the schedules' roles make (read
           from the deployed definitions and schedules: moto runs no Lambda task and fires no
           schedule; an ECS task of the definition on each service the secrets' rotor:consumers
           tags declare);
        3. the must-deny table: what no principal may ever do;
        4. parliament on every deployed policy and the key policies;
        5. two deliberate regressions of ci-rotate (no kms:DescribeKey; GetSecretValue added)
           must each be caught by 2 or 3.
        Prints the figures; exits 1 on any denied call, allowed must-deny, finding or missed
        regression.

The evaluator is principalmapper 1.1.5's local authorization simulation
(`local_check_authorization_full`): identity policies, permissions boundary, resource policy
(a KMS key policy must allow by itself or delegate to IAM) and condition keys. Chosen because it
evaluates all of these offline, as IAM's documented evaluation logic describes, and
is the most complete such evaluator on PyPI; its known gaps (no session policies from the test,
no SCPs: rotor uses neither) do not touch what rotor's policies use.

Principals are named by the access key id a call is signed with (tests/support/principals.rs):
`rotor-fn-<function>` (or, with moto's authentication on, a moto user of that name),
`rotor-ci-rotate`. The moto suites rotate secrets of their own, not the deployment's: a call on
a test secret is evaluated on the deployed secret of the same kind (`rotor:kind`), with that
secret's name in the candidate's encryption context, its IAM user, the deployment's key and
rotation state machine. A call on a secret that is not rotor's (no `rotor:kind`) or does not
exist is counted as outside the deployment and not evaluated (AWS would refuse it before it
found the resource missing).
"""

import argparse
import collections
import collections.abc
import copy
import json
import os
import sys
import urllib.parse

# principalmapper 1.1.5 imports Mapping from collections (gone in Python 3.10).
collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]
collections.MutableMapping = collections.abc.MutableMapping  # type: ignore[attr-defined]

HARNESS_KEYS = {"testing", "AKIAEXAMPLE", "rotor-test-admin"}
# moto's own Step Functions interpreter invoking Lambda: moto's calls, not a principal's.
MOTO_KEYS = {"ak"}
FUNCTION_KEY_PREFIX = "rotor-fn-"
CI_ROTATE_KEY = "rotor-ci-rotate"
# Terraform as the deploy workflow runs it (tests/terraform.rs): plan as ci-plan, apply as ci-deploy.
TERRAFORM_KEYS = {"rotor-ci-plan": "ci-plan", "rotor-ci-deploy": "ci-deploy"}
FUNCTIONS = ["stage-pending", "health-probe", "promote", "revoke-old-iam-key", "rollback", "audit-log"]

# Calls IAM never denies.
NO_PERMISSION = {("sts", "GetCallerIdentity")}


def doc(value):
    """A policy document as IAM or moto answers it: a dict, JSON text or URL-encoded JSON."""
    if value is None or isinstance(value, dict):
        return value
    text = value if value.lstrip().startswith("{") else urllib.parse.unquote(value)
    return json.loads(text)


# ------------------------------------------------------------------------------ snapshot


def snapshot(endpoint: str, prefix: str, out: str) -> None:
    import boto3

    kw = dict(endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    iam = boto3.client("iam", region_name="us-east-1", **kw)
    sts = boto3.client("sts", region_name="us-east-1", **kw)
    account = sts.get_caller_identity()["Account"]
    snap = {"prefix": prefix, "account": account, "region": "us-east-1", "roles": {}, "keys": {}, "secrets": [],
            "state_machines": [], "schedules": [], "functions": []}

    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if not name.startswith(prefix + "-"):
                continue
            got = iam.get_role(RoleName=name)["Role"]
            policies = []
            for pname in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                d = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
                policies.append({"name": pname, "arn": None, "document": doc(d)})
            for att in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                policies.append({"name": att["PolicyName"], "arn": att["PolicyArn"],
                                 "document": managed_document(iam, att["PolicyArn"])})
            boundary = None
            b = got.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            if b:
                boundary = {"arn": b, "document": managed_document(iam, b)}
            snap["roles"][name] = {"arn": got["Arn"], "id": got["RoleId"], "trust": doc(got["AssumeRolePolicyDocument"]),
                                   "policies": policies, "boundary": boundary,
                                   "max_session_duration": got.get("MaxSessionDuration")}

    regions = ["us-east-1", "us-west-2"]
    for region in regions:
        kms = boto3.client("kms", region_name=region, **kw)
        for page in kms.get_paginator("list_aliases").paginate():
            for alias in page["Aliases"]:
                if alias["AliasName"] == "alias/" + prefix and alias.get("TargetKeyId"):
                    meta = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
                    policy = kms.get_key_policy(KeyId=meta["Arn"], PolicyName="default")["Policy"]
                    snap["keys"][meta["Arn"]] = {"region": region, "policy": doc(policy), "alias": alias["AliasName"]}
        sm = boto3.client("secretsmanager", region_name=region, **kw)
        for page in sm.get_paginator("list_secrets").paginate():
            for s in page["SecretList"]:
                tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
                if tags.get("application") != prefix.split("-")[0] or tags.get("environment") != prefix.split("-", 1)[1]:
                    continue
                try:
                    rp = sm.get_resource_policy(SecretId=s["ARN"]).get("ResourcePolicy")
                except sm.exceptions.InvalidParameterException:
                    # A replica: its resource policy is the primary's (copied below).
                    rp = None
                snap["secrets"].append({"name": s["Name"], "arn": s["ARN"], "region": region, "tags": tags,
                                        "kms_key_id": s.get("KmsKeyId"), "resource_policy": doc(rp)})
    primaries = {s["name"]: s for s in snap["secrets"] if s["region"] == "us-east-1"}
    for s in snap["secrets"]:
        if s["region"] != "us-east-1" and s["name"] in primaries:
            s["resource_policy"] = primaries[s["name"]]["resource_policy"]
    sfn = boto3.client("stepfunctions", region_name="us-east-1", **kw)
    for page in sfn.get_paginator("list_state_machines").paginate():
        for m in page["stateMachines"]:
            if not m["name"].startswith(prefix + "-"):
                continue
            d = sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])
            snap["state_machines"].append({"name": m["name"], "arn": m["stateMachineArn"], "role_arn": d["roleArn"],
                                           "definition": json.loads(d["definition"]),
                                           "encryption": d.get("encryptionConfiguration")})
    sch = boto3.client("scheduler", region_name="us-east-1", **kw)
    try:
        for s in sch.list_schedules(GroupName=prefix).get("Schedules", []):
            g = sch.get_schedule(Name=s["Name"], GroupName=prefix)
            snap["schedules"].append({"name": s["Name"], "arn": g.get("Arn"), "kms_key_arn": g.get("KmsKeyArn"),
                                      "target_arn": g["Target"]["Arn"],
                                      "role_arn": g["Target"]["RoleArn"], "input": g["Target"].get("Input")})
    except Exception as e:  # noqa: BLE001 - a deployment without schedules
        print("permissions.py snapshot: no schedules read: %r" % (e,), file=sys.stderr)
    lam = boto3.client("lambda", region_name="us-east-1", **kw)
    for page in lam.get_paginator("list_functions").paginate():
        for f in page["Functions"]:
            if f["FunctionName"].startswith(prefix + "-"):
                snap["functions"].append({"name": f["FunctionName"], "arn": f["FunctionArn"], "role": f["Role"],
                                          "kms_key_arn": f.get("KMSKeyArn"),
                                          "vpc": f.get("VpcConfig") or None,
                                          "environment": sorted((f.get("Environment") or {}).get("Variables", {}))})
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(snap, fh, indent=1, sort_keys=True)
    print("permissions.py snapshot: %d roles, %d keys, %d secrets, %d state machines, %d schedules -> %s" % (
        len(snap["roles"]), len(snap["keys"]), len(snap["secrets"]), len(snap["state_machines"]),
        len(snap["schedules"]), out))


def managed_document(iam, arn: str) -> dict:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return doc(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


# ------------------------------------------------------------------------------ evaluation


class Deployment:
    def __init__(self, snap: dict):
        from principalmapper.common import Node, Policy

        self.snap = snap
        self.account = snap["account"]
        self.region = snap["region"]
        self.prefix = snap["prefix"]
        self.nodes = {}
        for name, role in snap["roles"].items():
            policies = [Policy(p["arn"] or role["arn"], p["name"], p["document"]) for p in role["policies"]]
            boundary = None
            if role["boundary"]:
                boundary = Policy(role["boundary"]["arn"], "boundary", role["boundary"]["document"])
            self.nodes[name] = Node(role["arn"], role["id"], policies, [], role["trust"], None, 0, False, False,
                                    boundary, False, None)
        self.secrets = {s["arn"]: s for s in snap["secrets"]}
        self.secret_by_name = {s["name"]: s for s in snap["secrets"] if s["region"] == self.region}
        self.keys = snap["keys"]
        self.primary_key = next(a for a, k in self.keys.items() if k["region"] == self.region)
        self.rotation = next(m for m in snap["state_machines"] if m["name"] == self.prefix + "-rotation")

    def role(self, short: str) -> str:
        return "%s-%s" % (self.prefix, short)

    def consumer_service_arns(self) -> list:
        """The ECS services the deployment's secrets declare in rotor:consumers, as service ARNs.

        An entry is `ecs:<cluster>/<service>` (names, which Step Functions resolves in the
        deployment's own region and account), `ecs:<cluster ARN>/<service>` or `ecs:<service
        ARN>` (crates/core/src/consumers.rs accepts all three)."""
        arns = set()
        for s in self.secret_by_name.values():
            for entry in (s["tags"].get("rotor:consumers") or "").split(","):
                kind, _, target = entry.strip().partition(":")
                if kind != "ecs" or not target:
                    continue
                arn = consumer_service_arn(target, self.region, self.account)
                if arn:
                    arns.add(arn)
        return sorted(arns)

    def representative(self, kind: str):
        """The deployed secret (primary region) a test secret of `kind` plays."""
        for s in sorted(self.secret_by_name.values(), key=lambda s: s["name"]):
            if s["tags"].get("rotor:kind", "vendor-api-key" if "rotor:probe" in s["tags"] else None) == kind:
                return s
        return None

    def key_arn(self, key_id):
        if not key_id:
            return self.primary_key
        for arn, k in self.keys.items():
            if key_id in (arn, arn.split("/")[-1], k.get("alias")):
                return arn
        return self.primary_key

    def resource_policy(self, resource: str):
        if resource.startswith("arn:aws:kms:"):
            k = self.keys.get(resource)
            return k["policy"] if k else None
        if resource.startswith("arn:aws:secretsmanager:"):
            s = self.secrets.get(resource)
            return s["resource_policy"] if s else None
        return None

    def allowed(self, role: str, action: str, resource: str, context: dict) -> bool:
        from principalmapper.querying.query_interface import local_check_authorization_full

        node = self.nodes[role]
        rp = self.resource_policy(resource)
        return local_check_authorization_full(node, action, resource, copy.deepcopy(context), rp,
                                              self.account if rp is not None else None)

    def why_denied(self, role: str, action: str, resource: str, context: dict) -> str:
        """Which policy denies: an explicit Deny (its Sid), or the layer with no Allow."""
        from principalmapper.querying.local_policy_simulation import policy_has_matching_statement
        from principalmapper.querying.query_interface import _infer_condition_keys, _prepare_condition_context

        node = self.nodes[role]
        ctx = _prepare_condition_context(copy.deepcopy(context))
        ctx.update(_infer_condition_keys(node, ctx))
        for p in node.attached_policies:
            for st in statements(p.policy_doc):
                if st.get("Effect") == "Deny" and policy_has_matching_statement(
                        {"Version": "2012-10-17", "Statement": [st]}, "Deny", action, resource, ctx):
                    return "explicit Deny %s in %s" % (st.get("Sid", "?"), p.name)
        rp = self.resource_policy(resource)
        if rp:
            for st in statements(rp):
                if st.get("Effect") == "Deny" and policy_has_matching_statement(
                        {"Version": "2012-10-17", "Statement": [st]}, "Deny", action, resource, ctx):
                    return "explicit Deny %s in the resource policy of %s" % (st.get("Sid", "?"), resource)
        if node.permissions_boundary is not None and not policy_has_matching_statement(
                node.permissions_boundary, "Allow", action, resource, ctx):
            return "the permissions boundary %s allows no such call" % node.permissions_boundary.arn
        if not any(policy_has_matching_statement(p, "Allow", action, resource, ctx) for p in node.attached_policies):
            return "no statement of %s's policies (%s) allows it" % (
                role, ", ".join(p.name for p in node.attached_policies))
        if rp is not None:
            return "the resource policy of %s does not allow it (a key policy must)" % resource
        return "denied (no single policy named)"


def statements(policy_doc: dict) -> list:
    st = (policy_doc or {}).get("Statement", [])
    return st if isinstance(st, list) else [st]


Eval = collections.namedtuple("Eval", "principal action resource context origin")


class Calls:
    """The recorded calls, attributed and mapped onto the deployment."""

    def __init__(self, dep: Deployment, records: list):
        self.dep = dep
        self.records = records
        # What the suites' own secrets were: name -> kind, iam user -> kind.
        self.kind_of_secret = {}
        self.test_users = set()
        for r in records:
            tags = r.get("secret_tags") or {}
            kind = tags.get("rotor:kind")
            if kind and r.get("secret_name"):
                self.kind_of_secret[r["secret_name"]] = kind
                self.kind_of_secret[r.get("secret_arn")] = kind
            if tags.get("rotor:iam-user"):
                self.test_users.add(tags["rotor:iam-user"])
        self.outside = collections.Counter()
        self.harness = 0
        self.moto = 0
        self.unattributed = collections.Counter()

    def principal(self, r: dict):
        key = r.get("key_user") or r.get("key", "")
        if key.startswith(FUNCTION_KEY_PREFIX):
            return self.dep.role(key[len(FUNCTION_KEY_PREFIX):])
        if key == CI_ROTATE_KEY:
            return self.dep.role("ci-rotate")
        if key in TERRAFORM_KEYS:
            return self.dep.role(TERRAFORM_KEYS[key])
        return None

    def secret(self, r: dict):
        arn = r.get("secret_arn")
        if arn in self.dep.secrets:
            return self.dep.secrets[arn]
        kind = (r.get("secret_tags") or {}).get("rotor:kind")
        return self.dep.representative(kind) if kind else None

    def evaluations(self):
        dep = self.dep
        for r in self.records:
            role = self.principal(r)
            if role is None:
                if r.get("key") in HARNESS_KEYS or r.get("key_user") in HARNESS_KEYS:
                    self.harness += 1
                elif r.get("key") in MOTO_KEYS:
                    self.moto += 1
                else:
                    self.unattributed[r.get("key_user") or r.get("key")] += 1
                continue
            service, action = r["service"], r["action"]
            if (service, action) in NO_PERMISSION:
                continue
            origin = "%s %s (%s)" % (service, action, r.get("fields", {}).get("SecretId") or r.get("fields", {}).get("KeyId") or "")
            if role in (dep.role("ci-plan"), dep.role("ci-deploy")):
                yield from self.map_terraform_call(role, service, action, r, origin)
            else:
                yield from self.map_call(role, service, action, r, origin)

    def map_call(self, role, service, action, r, origin):
        dep, f = self.dep, r.get("fields", {})
        base = {"aws:PrincipalArn": dep.snap["roles"][role]["arn"]}
        iam_action = "%s:%s" % ("states" if service == "stepfunctions" else service, action)
        if service == "secretsmanager":
            s = self.secret(r)
            if s is None:
                self.outside["%s on %s" % (iam_action, f.get("SecretId"))] += 1
                return
            ctx = dict(base, **secret_context(s))
            if f.get("VersionStage"):
                ctx["secretsmanager:VersionStage"] = f["VersionStage"]
            if f.get("VersionId"):
                ctx["secretsmanager:VersionId"] = f["VersionId"]
            if f.get("TagKeys"):
                ctx["aws:TagKeys"] = list(f["TagKeys"])
            yield Eval(role, iam_action, s["arn"], ctx, origin)
            # Secrets Manager uses the secret's key for the caller (kms:ViaService).
            implied = {"GetSecretValue": "kms:Decrypt", "PutSecretValue": "kms:GenerateDataKey"}.get(action)
            if implied:
                kctx = dict(base, **{
                    "kms:ViaService": "secretsmanager.%s.amazonaws.com" % s["region"],
                    "kms:EncryptionContext:SecretARN": s["arn"],
                    "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"],
                    "kms:CallerAccount": dep.account,
                })
                yield Eval(role, implied, dep.key_arn(s.get("kms_key_id")), kctx, origin + " via Secrets Manager")
        elif service == "kms":
            key = r.get("key_arn")
            key = key if key in dep.keys else dep.primary_key
            ctx = dict(base, **{"kms:CallerAccount": dep.account})
            ec = dict(f.get("EncryptionContext") or {})
            if "SecretId" in ec and ec["SecretId"] not in dep.secret_by_name:
                kind = self.kind_of_secret.get(ec["SecretId"])
                s = dep.representative(kind) if kind else None
                if s is None:
                    self.outside["%s for %s" % (iam_action, ec["SecretId"])] += 1
                    return
                ec["SecretId"] = s["name"]
            for k, v in ec.items():
                ctx["kms:EncryptionContext:" + k] = v
            if ec:
                ctx["kms:EncryptionContextKeys"] = sorted(ec)
            yield Eval(role, iam_action, key, ctx, origin)
        elif service == "iam":
            user = f.get("UserName") or r.get("key_owner")
            managed = {s["tags"].get("rotor:iam-user") for s in dep.secrets.values()} - {None}
            if user not in managed:
                if user in self.test_users:
                    rep = dep.representative("iam-access-key")
                    user = rep["tags"]["rotor:iam-user"] if rep else None
                else:
                    user = None
            if user is None:
                self.outside["%s on %s" % (iam_action, f.get("UserName"))] += 1
                return
            yield Eval(role, iam_action, "arn:aws:iam::%s:user/%s" % (dep.account, user), base, origin)
        elif service == "cloudwatch":
            ctx = dict(base)
            if f.get("Namespace"):
                ctx["cloudwatch:namespace"] = f["Namespace"]
            yield Eval(role, iam_action, "*", ctx, origin)
        elif service == "stepfunctions":
            machine = dep.rotation
            if action in ("StartExecution", "ListExecutions", "DescribeStateMachine"):
                resource = machine["arn"]
            elif f.get("executionArn"):
                name = f["executionArn"].split(":")[-1]
                resource = "arn:aws:states:%s:%s:execution:%s:%s" % (dep.region, dep.account, machine["name"], name)
            else:
                resource = machine["arn"]
            yield Eval(role, iam_action, resource, base, origin)
            # A state machine encrypted with the key: Step Functions uses it for the caller.
            enc = machine.get("encryption") or {}
            implied = {"StartExecution": "kms:GenerateDataKey", "DescribeExecution": "kms:Decrypt",
                       "GetExecutionHistory": "kms:Decrypt"}.get(action)
            if implied and enc.get("type") == "CUSTOMER_MANAGED_KMS_KEY":
                kctx = dict(base, **{
                    "kms:ViaService": "states.%s.amazonaws.com" % dep.region,
                    "kms:EncryptionContext:aws:states:stateMachineArn": machine["arn"],
                    "kms:EncryptionContextKeys": ["aws:states:stateMachineArn"],
                    "kms:CallerAccount": dep.account,
                })
                yield Eval(role, implied, dep.key_arn(enc.get("kmsKeyId")), kctx, origin + " via Step Functions")
        else:
            self.outside["%s (service not mapped)" % iam_action] += 1

    def map_terraform_call(self, role, service, action, r, origin):
        """A call of the AWS provider, on the deployment's own resources (their real ARNs)."""
        dep, f = self.dep, r.get("fields", {})
        acct, region = dep.account, r.get("region") or dep.region
        base = {"aws:PrincipalArn": dep.snap["roles"][role]["arn"]}
        prefix = "states" if service == "stepfunctions" else service
        iam_action = "%s:%s" % (prefix, action)
        arn = "arn:aws:%s:%s:%s:" % (service, region, acct)
        resource, ctx = "*", dict(base)
        if service == "secretsmanager":
            s = self.dep.secrets.get(r.get("secret_arn"))
            if s is None:
                self.outside["%s on %s" % (iam_action, f.get("SecretId"))] += 1
                return
            resource = s["arn"]
            ctx.update(secret_context(s))
            for k in ("VersionId", "VersionStage"):
                if f.get(k):
                    ctx["secretsmanager:" + k] = f[k]
            if action == "GetSecretValue":
                yield Eval(role, "kms:Decrypt", dep.key_arn(s.get("kms_key_id")), dict(base, **{
                    "kms:ViaService": "secretsmanager.%s.amazonaws.com" % s["region"],
                    "kms:EncryptionContext:SecretARN": s["arn"],
                    "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"]}), origin + " via Secrets Manager")
        elif service == "kms":
            if action in ("ListAliases", "CreateKey"):
                resource = "*"
            else:
                resource = r.get("key_arn") or (arn.replace(":kms:", ":kms:") + f["AliasName"] if f.get("AliasName") else "*")
            if action in ("CreateAlias", "UpdateAlias", "DeleteAlias") and f.get("AliasName"):
                yield Eval(role, iam_action, "arn:aws:kms:%s:%s:%s" % (region, acct, f["AliasName"]), ctx, origin)
                target = f.get("TargetKeyId")
                resource = dep.key_arn(target) if target else None
                if resource is None:
                    return
        elif service == "iam":
            if f.get("RoleName"):
                resource = "arn:aws:iam::%s:role/%s" % (acct, f["RoleName"])
                if action in ("PutRolePolicy", "DeleteRolePolicy"):
                    b = (dep.snap["roles"].get(f["RoleName"], {}).get("boundary") or {}).get("arn")
                    if b:
                        ctx["iam:PermissionsBoundary"] = b
            elif f.get("PolicyArn"):
                resource = f["PolicyArn"]
            elif f.get("OpenIDConnectProviderArn"):
                resource = f["OpenIDConnectProviderArn"]
            elif f.get("UserName"):
                resource = "arn:aws:iam::%s:user/%s" % (acct, f["UserName"])
        elif service == "lambda":
            name = f.get("FunctionName") or f.get("Resource") or ""
            resource = name if name.startswith("arn:") else arn + "function:" + name
            resource = ":".join(resource.split(":")[:7])
            fn = next((x for x in dep.snap["functions"] if x["arn"] == resource), None)
            if action in ("GetFunction", "GetFunctionConfiguration") and fn and fn.get("kms_key_arn"):
                yield Eval(role, "kms:Decrypt", fn["kms_key_arn"], dict(base, **{
                    "kms:ViaService": "lambda.%s.amazonaws.com" % region,
                    "kms:EncryptionContext:aws:lambda:FunctionArn": resource,
                    "kms:EncryptionContextKeys": ["aws:lambda:FunctionArn"]}), origin + " via Lambda")
            if f.get("Role") and action in ("CreateFunction", "UpdateFunctionConfiguration"):
                yield Eval(role, "iam:PassRole", f["Role"], dict(base, **{"iam:PassedToService": "lambda.amazonaws.com"}), origin)
        elif service == "logs":
            if f.get("logGroupName"):
                resource = arn + "log-group:" + f["logGroupName"]
            elif f.get("resourceArn"):
                resource = f["resourceArn"].rstrip("*").rstrip(":")
        elif service == "stepfunctions":
            resource = f.get("stateMachineArn") or f.get("resourceArn") or "*"
            if action == "CreateStateMachine" and f.get("name"):
                resource = "arn:aws:states:%s:%s:stateMachine:%s" % (region, acct, f["name"])
            m = next((x for x in dep.snap["state_machines"] if x["arn"] == resource), None)
            enc = (m or {}).get("encryption") or {}
            if action == "DescribeStateMachine" and enc.get("type") == "CUSTOMER_MANAGED_KMS_KEY":
                yield Eval(role, "kms:Decrypt", dep.key_arn(enc.get("kmsKeyId")), dict(base, **{
                    "kms:ViaService": "states.%s.amazonaws.com" % region,
                    "kms:EncryptionContext:aws:states:stateMachineArn": resource,
                    "kms:EncryptionContextKeys": ["aws:states:stateMachineArn"]}), origin + " via Step Functions")
            if f.get("roleArn") and action in ("CreateStateMachine", "UpdateStateMachine"):
                yield Eval(role, "iam:PassRole", f["roleArn"], dict(base, **{"iam:PassedToService": "states.amazonaws.com"}), origin)
        elif service == "scheduler":
            if f.get("ResourceArn"):
                resource = f["ResourceArn"]
            elif action.endswith("ScheduleGroup") and f.get("Name"):
                resource = arn + "schedule-group/" + f["Name"]
            elif f.get("Name"):
                resource = arn + "schedule/%s/%s" % (f.get("GroupName") or f.get("groupName") or "default", f["Name"])
            sch = next((x for x in dep.snap["schedules"] if x.get("arn") == resource), None)
            if action == "GetSchedule" and sch and sch.get("kms_key_arn"):
                yield Eval(role, "kms:Decrypt", sch["kms_key_arn"], dict(base, **{
                    "kms:ViaService": "scheduler.%s.amazonaws.com" % region,
                    "kms:EncryptionContext:aws:scheduler:schedule-arn": resource,
                    "kms:EncryptionContextKeys": ["aws:scheduler:schedule-arn"]}), origin + " via Scheduler")
            target = f.get("Target") or {}
            if target.get("RoleArn") and action in ("CreateSchedule", "UpdateSchedule"):
                yield Eval(role, "iam:PassRole", target["RoleArn"], dict(base, **{"iam:PassedToService": "scheduler.amazonaws.com"}), origin)
        elif service == "sns":
            resource = f.get("TopicArn") or f.get("ResourceArn") or f.get("SubscriptionArn") or "*"
            if action == "CreateTopic" and f.get("Name"):
                resource = arn + f["Name"]
        elif service == "cloudwatch":
            names = f.get("AlarmNames")
            if f.get("ResourceARN"):
                resource = f["ResourceARN"]
            elif names:
                for n in names if isinstance(names, list) else [names]:
                    yield Eval(role, iam_action, arn + "alarm:" + n, ctx, origin)
                return
            elif f.get("AlarmName"):
                resource = arn + "alarm:" + f["AlarmName"]
        elif service in ("sts",):
            return
        else:
            self.outside["%s (service not mapped)" % iam_action] += 1
            return
        yield Eval(role, iam_action, resource, ctx, origin)

    def service_roles(self):
        """What the state machines' and the schedules' roles call: read from the deployment."""
        dep = self.dep
        by_arn = {r["arn"]: name for name, r in dep.snap["roles"].items()}
        for m in dep.snap["state_machines"]:
            role = by_arn.get(m["role_arn"])
            if role is None:
                continue
            for task in tasks(m["definition"]):
                res = task.get("Resource", "")
                params = task.get("Parameters") or task.get("Arguments") or {}
                if res.startswith("arn:aws:states:::lambda:invoke"):
                    fn = params.get("FunctionName")
                    yield Eval(role, "lambda:InvokeFunction", fn, {}, "%s task of %s" % (res, m["name"]))
                elif ":lambda:" in res and ":function:" in res:
                    yield Eval(role, "lambda:InvokeFunction", res, {}, "task of %s" % m["name"])
                elif res.startswith("arn:aws:states:::aws-sdk:"):
                    service, op = res.split(":")[-2], res.split(":")[-1]
                    action = "%s:%s" % (service, op[0].upper() + op[1:])
                    origin = "%s task of %s" % (res, m["name"])
                    if service == "secretsmanager":
                        # The secret comes from the execution input: the secrets its schedules
                        # name (any secret of the deployment when nothing schedules it).
                        inputs = [x.get("input") or "" for x in dep.snap["schedules"] if x["target_arn"] == m["arn"]]
                        named = [s for s in dep.secret_by_name.values() if any(s["name"] in i or s["arn"] in i for i in inputs)]
                        for s in named or dep.secret_by_name.values():
                            yield Eval(role, action, s["arn"], secret_context(s), origin)
                    elif service == "cloudwatch":
                        ctx = {"cloudwatch:namespace": params["Namespace"]} if "Namespace" in params else {}
                        yield Eval(role, action, "*", ctx, origin)
                    elif service == "ecs":
                        # Cluster and Service come from the secret's rotor:consumers tag: each
                        # service any secret declares (none: the task never runs, nothing to
                        # evaluate). UpdateService and DescribeServices are on the service ARN.
                        for arn in dep.consumer_service_arns():
                            yield Eval(role, action, arn, {"ecs:cluster": arn.replace(":service/", ":cluster/").rsplit("/", 1)[0]}, origin)
                    else:
                        yield Eval(role, action, "*", {}, origin)
                elif res.startswith("arn:aws:states:::states:startExecution"):
                    yield Eval(role, "states:StartExecution", params.get("StateMachineArn"), {}, m["name"])
        for s in dep.snap["schedules"]:
            role = by_arn.get(s["role_arn"])
            if role is not None:
                yield Eval(role, "states:StartExecution", s["target_arn"], {}, "schedule %s" % s["name"])


def secret_context(s: dict, **extra) -> dict:
    """The condition keys of a call on secret `s`: its id and its tags."""
    ctx = {"secretsmanager:SecretId": s["arn"]}
    for k, v in s["tags"].items():
        ctx["aws:ResourceTag/" + k] = v
        ctx["secretsmanager:ResourceTag/" + k] = v
    ctx.update(extra)
    return ctx


def consumer_service_arn(target: str, region: str, account: str):
    """`<cluster>/<service>`, `<cluster ARN>/<service>` or `<service ARN>` -> the service's ARN
    (long format, arn:aws:ecs:<region>:<account>:service/<cluster>/<service>), else None."""
    if target.startswith("arn:"):
        parts = target.split(":", 5)
        if len(parts) != 6 or parts[2] != "ecs":
            return None
        resource = parts[5]
        if resource.startswith("service/") and resource.count("/") == 2:
            return target
        if resource.startswith("cluster/") and resource.count("/") == 2:
            _, cluster, service = resource.split("/")
            return "%s:service/%s/%s" % (":".join(parts[:5]), cluster, service)
        return None
    cluster, sep, service = target.rpartition("/")
    if not sep or not cluster or not service or "/" in cluster:
        return None
    return "arn:aws:ecs:%s:%s:service/%s/%s" % (region, account, cluster, service)


def tasks(definition: dict):
    for state in (definition.get("States") or {}).values():
        if state.get("Type") == "Task":
            yield state
        for branch in state.get("Branches", []):
            yield from tasks(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from tasks(state[key])


# ------------------------------------------------------------------------------ must-deny


def must_deny(dep: Deployment) -> list:
    """(principal, action, resource, context, why): each must be denied."""
    rows = []
    acct, region = dep.account, dep.region
    key = dep.primary_key
    secrets = sorted(dep.secret_by_name.values(), key=lambda s: s["name"])
    candidate = {"kms:EncryptionContext:SecretId": secrets[0]["name"],
                 "kms:EncryptionContext:Execution": "rotate-x-20261203T000000-0a1b2c3d",
                 "kms:EncryptionContext:NotAfter": "2099-01-01T00:00:00Z",
                 "kms:EncryptionContextKeys": ["Execution", "NotAfter", "SecretId"], "kms:CallerAccount": acct}
    # The old, unsealed context (no execution, no deadline): a candidate usable forever.
    unsealed = {"kms:EncryptionContext:SecretId": secrets[0]["name"], "kms:EncryptionContextKeys": ["SecretId"],
                "kms:CallerAccount": acct}

    secret_ctx = secret_context
    roles = dep.snap["roles"]
    ci_rotate, ci_deploy = dep.role("ci-rotate"), dep.role("ci-deploy")
    if ci_rotate in roles:
        for s in secrets:
            rows.append((ci_rotate, "secretsmanager:GetSecretValue", s["arn"], secret_ctx(s, **{"secretsmanager:VersionStage": "AWSCURRENT"}), "ci-rotate never reads a value"))
        rows.append((ci_rotate, "kms:Decrypt", key, candidate, "ci-rotate never decrypts a candidate"))
        rows.append((ci_rotate, "kms:Encrypt", key, unsealed, "ci-rotate never makes a candidate without an execution and a deadline"))
        for action, res in [("iam:PutRolePolicy", roles[ci_rotate]["arn"]), ("iam:AttachRolePolicy", roles[ci_rotate]["arn"]),
                            ("iam:CreatePolicyVersion", "arn:aws:iam::%s:policy/%s-boundary" % (acct, dep.prefix)),
                            ("kms:PutKeyPolicy", key), ("secretsmanager:PutResourcePolicy", secrets[0]["arn"])]:
            rows.append((ci_rotate, action, res, {}, "ci-rotate never changes a policy"))
    if ci_deploy in roles:
        for s in secrets:
            rows.append((ci_deploy, "secretsmanager:GetSecretValue", s["arn"], secret_ctx(s, **{"secretsmanager:VersionStage": "AWSCURRENT", "secretsmanager:VersionId": "rotated-version"}), "ci-deploy never reads a value"))
        rows.append((ci_deploy, "kms:Decrypt", key, candidate, "ci-deploy never decrypts a candidate"))
        rows.append((ci_deploy, "iam:CreateRole", "arn:aws:iam::%s:role/%s-unbounded" % (acct, dep.prefix), {}, "ci-deploy never creates a role"))
        rows.append((ci_deploy, "iam:PutRolePolicy", "arn:aws:iam::%s:role/%s-stage-pending" % (acct, dep.prefix), {}, "ci-deploy never changes an unbounded role"))
        rows.append((ci_deploy, "iam:PutRolePolicy", "arn:aws:iam::%s:role/other-team" % acct, {"iam:PermissionsBoundary": "arn:aws:iam::%s:policy/%s-boundary" % (acct, dep.prefix)}, "ci-deploy never changes a role outside the deployment"))
        if ci_rotate in roles:
            for action in ("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary"):
                b = (roles[ci_rotate].get("boundary") or {}).get("arn")
                rows.append((ci_deploy, action, roles[ci_rotate]["arn"], {"iam:PermissionsBoundary": b} if b else {}, "ci-deploy never edits ci-rotate"))
        rows.append((ci_deploy, "iam:UpdateAssumeRolePolicy", roles[ci_deploy]["arn"], {}, "ci-deploy never edits itself"))
        rows.append((ci_deploy, "kms:PutKeyPolicy", key, {}, "ci-deploy never changes the key policy"))
        # PassRole is per role: each role only to the service that assumes it.
        wrong_service = [(dep.role("stage-pending"), "states.amazonaws.com"), (dep.role("stage-pending"), "ec2.amazonaws.com"),
                         (dep.role("rotation-sfn"), "lambda.amazonaws.com"), (dep.role("scheduler"), "states.amazonaws.com")]
        for role, service in wrong_service:
            if role in roles:
                rows.append((ci_deploy, "iam:PassRole", roles[role]["arn"], {"iam:PassedToService": service}, "ci-deploy passes each role only to its own service"))
    for f in FUNCTIONS:
        role = dep.role(f)
        if role not in roles:
            continue
        for action in ("iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys"):
            rows.append((role, action, "arn:aws:iam::%s:user/someone-else" % acct, {}, "a function never touches a user it does not rotate"))
        rows.append((role, "iam:CreateAccessKey", "arn:aws:iam::%s:user/%s-ci-deploy" % (acct, dep.prefix), {}, "a function never touches a user it does not rotate"))
        other = "arn:aws:secretsmanager:%s:%s:secret:not-rotors-AbCdEf" % (region, acct)
        for action in ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "secretsmanager:DescribeSecret"):
            rows.append((role, action, other, {"secretsmanager:SecretId": other}, "a function never touches a secret rotor does not manage"))
        if f != "stage-pending":
            rows.append((role, "kms:Decrypt", key, candidate, "only stage-pending decrypts a candidate"))
        else:
            rows.append((role, "kms:Decrypt", key, unsealed, "stage-pending never opens a candidate without an execution and a deadline"))
    # The audit trail (create_cloudtrail) is the administrator's: no CI role may change, stop or
    # delete it, or touch its log files.
    trail = "arn:aws:cloudtrail:%s:%s:trail/%s-audit" % (region, acct, dep.prefix)
    bucket = "arn:aws:s3:::%s-audit-trail-%s" % (dep.prefix, acct)
    for who in (ci_deploy, ci_rotate):
        if who not in roles:
            continue
        for action in ("cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors"):
            rows.append((who, action, trail, {}, "no CI role changes or stops the audit trail"))
        for action, res in [("s3:PutBucketPolicy", bucket), ("s3:DeleteBucket", bucket), ("s3:PutLifecycleConfiguration", bucket),
                            ("s3:DeleteObject", bucket + "/AWSLogs/%s/CloudTrail/x.json.gz" % acct),
                            ("s3:PutObject", bucket + "/AWSLogs/%s/CloudTrail/x.json.gz" % acct)]:
            rows.append((who, action, res, {}, "no CI role rewrites the audit trail's log files or bucket"))
    # A probe's destination is not a tag away: no deployed role may write a rotor:* tag (only
    # the administrators, whose roles are not the deployment's).
    for name in sorted(roles):
        for s in secrets:
            for action in ("secretsmanager:TagResource", "secretsmanager:UntagResource"):
                rows.append((name, action, s["arn"], secret_ctx(s, **{"aws:TagKeys": ["rotor:probe-url"]}),
                             "no deployed role rewrites a rotor:* tag"))
    # Every other role of the deployment (state machines, schedules, ci-plan) likewise.
    checked = {ci_rotate, ci_deploy} | {dep.role(f) for f in FUNCTIONS}
    for name in sorted(set(roles) - checked):
        rows.append((name, "kms:Decrypt", key, candidate, "only stage-pending decrypts a candidate"))
    # Consumers: the state machine redeploys exactly the services the secrets declare, never
    # another (not even another service of a declared cluster); nothing else calls ECS.
    undeclared = ["arn:aws:ecs:%s:%s:service/other-cluster/other-service" % (region, acct)]
    for arn in dep.consumer_service_arns():
        sibling = arn.rsplit("/", 1)[0] + "/other-service"
        if sibling not in dep.consumer_service_arns() and sibling not in undeclared:
            undeclared.append(sibling)
    sfn = dep.role("rotation-sfn")
    for arn in undeclared:
        ctx = {"ecs:cluster": arn.replace(":service/", ":cluster/").rsplit("/", 1)[0]}
        if sfn in roles:
            for action in ("ecs:UpdateService", "ecs:DescribeServices"):
                rows.append((sfn, action, arn, ctx, "the state machine redeploys only the declared consumer services"))
        for name in sorted(set(roles) - {sfn}):
            rows.append((name, "ecs:UpdateService", arn, ctx, "only the state machine redeploys a consumer"))
    for arn in dep.consumer_service_arns():
        ctx = {"ecs:cluster": arn.replace(":service/", ":cluster/").rsplit("/", 1)[0]}
        for name in sorted(set(roles) - {sfn}):
            rows.append((name, "ecs:UpdateService", arn, ctx, "only the state machine redeploys a consumer"))
    return rows


# ------------------------------------------------------------------------------ parliament


def lint(dep: Deployment, ignores_file: str):
    import parliament

    # [{"issue": ..., "match": <text in the policy's label or the finding>, "reason": ...}]
    ignores = []
    if ignores_file and os.path.exists(ignores_file):
        with open(ignores_file, encoding="utf-8") as fh:
            ignores = json.load(fh)
    for ig in ignores:
        if not ig.get("reason"):
            raise SystemExit("%s: every ignore needs its reason: %r" % (ignores_file, ig))
    suppressed = collections.Counter()
    found = []
    docs = []
    for name, role in dep.snap["roles"].items():
        for p in role["policies"]:
            docs.append(("%s: %s" % (name, p["name"]), p["document"]))
        if role["boundary"]:
            docs.append(("boundary %s" % role["boundary"]["arn"], role["boundary"]["document"]))
    for arn, k in dep.keys.items():
        docs.append(("key policy %s" % arn, k["policy"]))
    seen = set()
    for label, d in docs:
        text = json.dumps(d, sort_keys=True)
        if text in seen:
            continue
        seen.add(text)
        policy = parliament.analyze_policy_string(text, include_community_auditors=False)
        for finding in policy.findings:
            issue = finding.issue
            text = "%s: %s %s" % (label, issue, json.dumps(finding.detail, default=str))
            hit = [ig for ig in ignores if ig["issue"] == issue and ig.get("match", "") in text]
            if hit:
                suppressed[hit[0]["reason"]] += 1
                continue
            found.append(text[:400])
    return len(seen), found, suppressed


# ------------------------------------------------------------------------------ self-check


def evaluator_self_check() -> tuple:
    """Answers the AWS documentation gives, asked of the evaluator before it is trusted."""
    from principalmapper.common import Node, Policy
    from principalmapper.querying.query_interface import local_check_authorization_full

    arn = "arn:aws:iam::111122223333:role/r"

    def node(policies, boundary=None):
        return Node(arn, "AROAEXAMPLE", [Policy(arn, "p%d" % i, p) for i, p in enumerate(policies)], [], {}, None, 0,
                    False, False, Policy("arn:aws:iam::111122223333:policy/b", "b", boundary) if boundary else None,
                    False, None)

    def allow(action, resource, cond=None):
        st = {"Effect": "Allow", "Action": action, "Resource": resource}
        if cond:
            st["Condition"] = cond
        return {"Version": "2012-10-17", "Statement": [st]}

    key = "arn:aws:kms:us-east-1:111122223333:key/k"
    root_key_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}
    ctx_a = {"kms:EncryptionContext:SecretId": "a"}
    cases = [
        ("an explicit Deny overrides an Allow",
         not local_check_authorization_full(node([allow("s3:GetObject", "*"), {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}]), "s3:GetObject", "arn:aws:s3:::b/k", {})),
        ("no Allow is an implicit deny",
         not local_check_authorization_full(node([allow("s3:PutObject", "*")]), "s3:GetObject", "arn:aws:s3:::b/k", {})),
        ("a permissions boundary caps the identity policy",
         not local_check_authorization_full(node([allow("s3:*", "*")], allow("s3:PutObject", "*")), "s3:GetObject", "arn:aws:s3:::b/k", {})),
        ("identity and boundary both allowing allow",
         local_check_authorization_full(node([allow("s3:*", "*")], allow("s3:GetObject", "*")), "s3:GetObject", "arn:aws:s3:::b/k", {})),
        ("kms:EncryptionContext condition matches its value",
         local_check_authorization_full(node([allow("kms:Decrypt", key, {"StringEquals": {"kms:EncryptionContext:SecretId": "a"}})]), "kms:Decrypt", key, ctx_a, root_key_policy, "111122223333")),
        ("kms:EncryptionContext condition refuses another value",
         not local_check_authorization_full(node([allow("kms:Decrypt", key, {"StringEquals": {"kms:EncryptionContext:SecretId": "a"}})]), "kms:Decrypt", key, {"kms:EncryptionContext:SecretId": "b"}, root_key_policy, "111122223333")),
        ("a key policy that does not delegate to IAM denies",
         not local_check_authorization_full(node([allow("kms:Decrypt", key)]), "kms:Decrypt", key, {}, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/other"}, "Action": "kms:*", "Resource": "*"}]}, "111122223333")),
        ("Null true requires the key to be absent",
         not local_check_authorization_full(node([allow("kms:Decrypt", key, {"Null": {"kms:ViaService": "true"}})]), "kms:Decrypt", key, {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}, root_key_policy, "111122223333")),
        ("ForAllValues over the context keys refuses an extra key",
         not local_check_authorization_full(node([allow("kms:Decrypt", key, {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["SecretId"]}})]), "kms:Decrypt", key, {"kms:EncryptionContextKeys": ["SecretId", "Other"]}, root_key_policy, "111122223333")),
        ("a service ARN grant does not reach another service of the same cluster",
         not local_check_authorization_full(node([allow("ecs:UpdateService", "arn:aws:ecs:us-east-1:111122223333:service/c/a")]), "ecs:UpdateService", "arn:aws:ecs:us-east-1:111122223333:service/c/b", {})),
        ("a service ARN grant allows that service",
         local_check_authorization_full(node([allow("ecs:UpdateService", "arn:aws:ecs:us-east-1:111122223333:service/c/a")]), "ecs:UpdateService", "arn:aws:ecs:us-east-1:111122223333:service/c/a", {})),
        ("an explicit Deny in a resource policy overrides",
         not local_check_authorization_full(node([allow("secretsmanager:TagResource", "*")]), "secretsmanager:TagResource", "arn:aws:secretsmanager:us-east-1:111122223333:secret:s-AbCdEf", {"aws:TagKeys": ["rotor:probe-url"]}, {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:TagResource", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "rotor:*"}}}]}, "111122223333")),
    ]
    return [name for name, ok in cases if not ok], len(cases)


# ------------------------------------------------------------------------------ check


def run_check(dep: Deployment, records: list):
    calls = Calls(dep, records)
    evals = list(calls.evaluations()) + list(calls.service_roles())
    denied = []
    distinct = {}
    for e in evals:
        k = (e.principal, e.action, e.resource, json.dumps(e.context, sort_keys=True))
        if k in distinct:
            continue
        distinct[k] = e
        if e.principal not in dep.nodes:
            denied.append((e, "the principal %s is not deployed" % e.principal))
            continue
        if not dep.allowed(e.principal, e.action, e.resource, e.context):
            denied.append((e, dep.why_denied(e.principal, e.action, e.resource, e.context)))
    table = []
    for principal, action, resource, ctx, why in must_deny(dep):
        ok = not dep.allowed(principal, action, resource, dict(ctx, **{"aws:PrincipalArn": dep.snap["roles"][principal]["arn"]}))
        table.append((principal, action, resource, why, ok))
    return calls, evals, distinct, denied, table


def mutated(snap: dict, role: str, change) -> dict:
    s = copy.deepcopy(snap)
    for p in s["roles"][role]["policies"]:
        change(p["document"])
    return s


def load_records(directory: str) -> list:
    records = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.endswith(".jsonl"):
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                records.extend(json.loads(line) for line in fh if line.strip())
    return records


def check(deployment: str, calls_dir: str, ignores_file: str) -> int:
    with open(deployment, encoding="utf-8") as fh:
        snap = json.load(fh)
    failures = 0
    broken, answers = evaluator_self_check()
    print("permission check: evaluator: principalmapper %s, %d documented answers checked, %d wrong" % (
        __import__("principalmapper").__version__, answers, len(broken)))
    for b in broken:
        print("  evaluator answers wrongly: %s" % b)
        failures += 1

    records = load_records(calls_dir)
    dep = Deployment(snap)
    calls, evals, distinct, denied, table = run_check(dep, records)
    principals = sorted({e.principal for e in evals})
    print("permission check: %d AWS calls recorded in the moto suites (%d by the harness itself, not a deployed principal)" % (
        len(records), calls.harness))
    print("permission check: calls checked: %d (%d distinct evaluations), principals: %d, denied: %d" % (
        len(evals), len(distinct), len(principals), len(denied)))
    per = collections.Counter(e.principal for e in evals)
    for p in principals:
        print("  %-40s %5d calls" % (p, per[p]))
    if calls.outside:
        print("  outside the deployment (not evaluated): %d calls: %s" % (
            sum(calls.outside.values()), ", ".join("%s x%d" % kv for kv in sorted(calls.outside.items())[:8])))
    if calls.unattributed or calls.moto:
        print("  not a deployed principal's: %d by moto's Step Functions interpreter, %d signed with the rotated"
              " IAM keys themselves (probes) or other keys: %s" % (calls.moto, sum(calls.unattributed.values()),
                                                                ", ".join(sorted(calls.unattributed))[:200]))
    for e, why in denied:
        print("  DENIED: %s %s on %s (%s): %s" % (e.principal, e.action, e.resource, e.origin, why))
        failures += 1
    print("permission check: must-deny table (%d rows):" % len(table))
    for principal, action, resource, why, ok in table:
        print("  %-6s %-34s %-36s %s  [%s]" % ("denied" if ok else "ALLOWED", principal, action, resource.split(":")[-1][:60], why))
        if not ok:
            failures += 1
    print("permission check: must-deny: %d of %d denied" % (sum(1 for r in table if r[4]), len(table)))

    n, findings, suppressed = lint(dep, ignores_file)
    print("permission check: parliament: %d policies, %d findings (%d suppressed with their reasons in %s)" % (
        n, len(findings), sum(suppressed.values()), os.path.relpath(ignores_file)))
    for f in findings:
        print("  parliament: %s" % f)
        failures += 1

    # Deliberate regressions must be caught.
    ci_rotate = dep.role("ci-rotate")
    caught = 0
    regressions = []
    if ci_rotate in snap["roles"]:
        def drop_describe_key(d):
            for st in statements(d):
                acts = st.get("Action")
                if isinstance(acts, list) and "kms:DescribeKey" in acts:
                    st["Action"] = [a for a in acts if a != "kms:DescribeKey"] or ["kms:ListAliases"]
                elif acts == "kms:DescribeKey":
                    st["Action"] = "kms:ListAliases"

        def add_get_secret_value(d):
            d["Statement"] = statements(d) + [{"Sid": "Regression", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                                              {"Sid": "RegressionKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]
        regressions = [("ci-rotate without kms:DescribeKey", drop_describe_key),
                       ("ci-rotate with secretsmanager:GetSecretValue", add_get_secret_value)]
        for label, change in regressions:
            _, _, _, d2, t2 = run_check(Deployment(mutated(snap, ci_rotate, change)), records)
            hit = len(d2) > len(denied) or sum(1 for r in t2 if not r[4]) > sum(1 for r in table if not r[4])
            print("permission check: regression %r: %s" % (label, "caught" if hit else "NOT CAUGHT"))
            caught += hit
            if not hit:
                failures += 1
    print("permission check: regressions caught: %d of %d" % (caught, len(regressions)))
    if not records:
        print("permission check: no calls recorded in %s" % calls_dir)
        failures += 1
    print("permission check: %s" % ("OK" if failures == 0 else "FAILED (%d)" % failures))
    return 0 if failures == 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("--endpoint", required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--deployment", required=True)
    c.add_argument("--calls", required=True)
    c.add_argument("--parliament-ignores", default=os.path.join(os.path.dirname(__file__), "..", "infrastructure", "parliament-ignores.json"))
    a = ap.parse_args()
    if a.cmd == "snapshot":
        snapshot(a.endpoint, a.prefix, a.out)
    else:
        sys.exit(check(a.deployment, a.calls, a.parliament_ignores))


if __name__ == "__main__":
    main()
