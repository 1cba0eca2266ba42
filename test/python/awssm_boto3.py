"""Drives awssmtest (or `keyprov emulate --awssm`) with boto3 through every
operation the emulator serves, asserting the answers against AWS's
documented behaviour and checking every raw response against botocore's
own service model: a member the model does not know, or a value of the wrong
type, fails the run. Run by awssm/awssmtest's TestBoto3; reads the endpoint
and credentials from AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION, and the control endpoint from
AWSSMTEST_CONTROL_URL. Prints "ok" and exits 0 on success."""

import json
import os
import sys
import urllib.request

import boto3
import botocore
from botocore.config import Config

checked = {}


def check_shape(shape, value, path):
    """Fails when value does not fit botocore's shape."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), f"{path}: want an object, got {value!r}"
        for k, v in value.items():
            assert k in shape.members, f"{path}: {k} is not in botocore's {shape.name}"
            check_shape(shape.members[k], v, f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), f"{path}: want a list"
        for i, v in enumerate(value):
            check_shape(shape.member, v, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), f"{path}: want a map"
        for k, v in value.items():
            check_shape(shape.value, v, f"{path}[{k}]")
    elif t == "timestamp":
        assert isinstance(value, (int, float)), f"{path}: want epoch seconds"
    elif t in ("string", "blob"):
        assert isinstance(value, str), f"{path}: want a string"
        if t == "string" and shape.enum:
            assert value in shape.enum, f"{path}: {value} not in {shape.enum}"
    elif t == "boolean":
        assert isinstance(value, bool), f"{path}: want a boolean"
    elif t in ("integer", "long"):
        assert isinstance(value, int), f"{path}: want an integer"


def after_call(http_response, parsed, model, **kwargs):
    body = json.loads(http_response.content or b"{}")
    if http_response.status_code == 200:
        check_shape(model.output_shape, body, model.name)
    else:
        assert set(body) <= {"__type", "Message"}, body
        code = body["__type"]
        known = {s.name for s in model.error_shapes}
        common = {"ThrottlingException", "UnrecognizedClientException", "AccessDeniedException",
                  "InternalServiceError", "ServiceUnavailable", "InvalidSignatureException"}
        assert code in known | common, f"{model.name}: {code} is not an error botocore knows for it"
    checked[model.name] = checked.get(model.name, 0) + 1


def client(**kw):
    c = boto3.session.Session().client(
        "secretsmanager", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}), **kw)
    c.meta.events.register("after-call.secrets-manager", after_call)
    return c


def control(cmd, body):
    req = urllib.request.Request(os.environ["AWSSMTEST_CONTROL_URL"] + cmd, data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def expect_error(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, (code, e.response["Error"])
        return e
    raise AssertionError(f"want {code}")


def stages(c, name):
    return {k: sorted(v) for k, v in c.describe_secret(SecretId=name)["VersionIdsToStages"].items()}


def main():
    c = client()
    # CreateSecret without a value, with tags; then a first version that asks
    # only for AWSPENDING gets AWSCURRENT too.
    tags = [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "test"}]
    made = c.create_secret(Name="svc/one", Description="first one", Tags=tags)
    assert "VersionId" not in made and made["ARN"].startswith("arn:aws:secretsmanager:"), made
    assert c.describe_secret(SecretId="svc/one")["Tags"] == tags
    expect_error("InvalidParameterException", c.create_secret, Name="svc/badtag", Tags=[{"Key": "aws:x", "Value": "y"}])
    expect_error("ResourceNotFoundException", c.describe_secret, SecretId="svc/badtag")
    first = c.put_secret_value(SecretId="svc/one", SecretString="v1", VersionStages=["AWSPENDING"])
    assert sorted(first["VersionStages"]) == ["AWSCURRENT", "AWSPENDING"], first
    assert c.get_secret_value(SecretId="svc/one")["SecretString"] == "v1"
    token = "a" * 32
    second = c.put_secret_value(SecretId="svc/one", SecretString="v2", ClientRequestToken=token)
    assert second["VersionId"] == token and second["VersionStages"] == ["AWSCURRENT"]
    assert stages(c, "svc/one") == {first["VersionId"]: ["AWSPENDING", "AWSPREVIOUS"], token: ["AWSCURRENT"]}
    got = c.get_secret_value(SecretId=made["ARN"], VersionStage="AWSPREVIOUS")
    assert got["SecretString"] == "v1" and got["Name"] == "svc/one"
    assert c.get_secret_value(SecretId="svc/one", VersionId=token)["SecretString"] == "v2"
    c.update_secret_version_stage(SecretId="svc/one", VersionStage="AWSPENDING", RemoveFromVersionId=first["VersionId"])
    c.update_secret_version_stage(SecretId="svc/one", VersionStage="AWSCURRENT",
                                  MoveToVersionId=first["VersionId"], RemoveFromVersionId=token)
    assert c.get_secret_value(SecretId="svc/one")["SecretString"] == "v1"
    expect_error("InvalidParameterException", c.update_secret_version_stage, SecretId="svc/one",
                 VersionStage="AWSCURRENT", RemoveFromVersionId=first["VersionId"])
    page1 = c.list_secret_version_ids(SecretId="svc/one", MaxResults=1)
    page2 = c.list_secret_version_ids(SecretId="svc/one", MaxResults=1, NextToken=page1["NextToken"])
    assert "NextToken" not in page2
    assert sorted(v["VersionId"] for p in (page1, page2) for v in p["Versions"]) == sorted([first["VersionId"], token])
    # UpdateSecret: a value makes a new AWSCURRENT version; metadata alone does not.
    up = c.update_secret(SecretId="svc/one", SecretString="v3", Description="updated")
    assert c.get_secret_value(SecretId="svc/one")["VersionId"] == up["VersionId"]
    assert "VersionId" not in c.update_secret(SecretId="svc/one", Description="again")
    assert c.describe_secret(SecretId="svc/one")["Description"] == "again"
    c.create_secret(Name="svc/two", SecretBinary=b"\x00\x01bin", Tags=[{"Key": "team", "Value": "search"}])
    c.create_secret(Name="other", SecretString="x")
    # ListSecrets: filters, sort, pagination by the CLI's and boto3's paginator.
    names = [s["Name"] for p in c.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 1}) for s in p["SecretList"]]
    assert names == ["svc/one", "svc/two", "other"], names
    f = c.list_secrets(Filters=[{"Key": "name", "Values": ["svc/"]}, {"Key": "tag-value", "Values": ["pay"]}])
    assert [s["Name"] for s in f["SecretList"]] == ["svc/one"], f
    assert [s["Name"] for s in c.list_secrets(SortBy="name", SortOrder="asc")["SecretList"]] == ["other", "svc/one", "svc/two"]
    assert [s["Name"] for s in c.list_secrets(Filters=[{"Key": "name", "Values": ["!svc"]}])["SecretList"]] == ["other"]
    assert [s["Name"] for s in c.list_secrets(Filters=[{"Key": "all", "Values": ["SEARCH"]}])["SecretList"]] == ["svc/two"]
    assert [s["Name"] for s in c.list_secrets(Filters=[{"Key": "description", "Values": ["AGAIN"]}])["SecretList"]] == ["svc/one"]
    expect_error("InvalidParameterException", c.list_secrets, Filters=[{"Key": "nope", "Values": ["x"]}])
    # BatchGetSecretValue by IDs (a missing one is an entry of Errors) and by filter.
    b = c.batch_get_secret_value(SecretIdList=["svc/one", "svc/two", "missing"])
    assert {v["Name"]: v.get("SecretString", v.get("SecretBinary")) for v in b["SecretValues"]} == {"svc/one": "v3", "svc/two": b"\x00\x01bin"}
    assert [(e["SecretId"], e["ErrorCode"]) for e in b["Errors"]] == [("missing", "ResourceNotFoundException")]
    f1 = c.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["svc"]}], MaxResults=1)
    f2 = c.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["svc"]}], MaxResults=1, NextToken=f1["NextToken"])
    bf = [v["Name"] for p in (f1, f2) for v in p["SecretValues"]]
    assert bf == ["svc/one", "svc/two"] and "NextToken" not in f2, bf
    # DeleteSecret with a window, reads refused, RestoreSecret, then for good.
    d = c.delete_secret(SecretId="other", RecoveryWindowInDays=7)
    assert "DeletionDate" in d
    expect_error("InvalidRequestException", c.get_secret_value, SecretId="other")
    assert "other" not in [s["Name"] for s in c.list_secrets()["SecretList"]]
    assert "other" in [s["Name"] for s in c.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    c.restore_secret(SecretId="other")
    c.delete_secret(SecretId="other", ForceDeleteWithoutRecovery=True)
    expect_error("ResourceNotFoundException", c.get_secret_value, SecretId="other")
    expect_error("ResourceExistsException", c.create_secret, Name="svc/one", SecretString="dup")
    # Faults and rotation from the control endpoint.
    control("fail", {"op": "GetSecretValue", "fault": "throttle", "count": 1})
    expect_error("ThrottlingException", c.get_secret_value, SecretId="svc/one")
    assert c.get_secret_value(SecretId="svc/one")["SecretString"] == "v3"
    control("rotate", {"SecretId": "svc/one", "SecretString": "v4"})
    assert c.get_secret_value(SecretId="svc/one")["SecretString"] == "v4"
    # A session token that is not the credential's is refused.
    bad = client(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], aws_session_token="FwoGZXIvYXdzEXAMPLE")
    expect_error("UnrecognizedClientException", bad.get_secret_value, SecretId="svc/one")
    want = {"CreateSecret", "PutSecretValue", "GetSecretValue", "UpdateSecretVersionStage", "DescribeSecret",
            "ListSecretVersionIds", "ListSecrets", "BatchGetSecretValue", "UpdateSecret", "DeleteSecret", "RestoreSecret"}
    assert want <= set(checked), want - set(checked)
    print("ok", json.dumps(checked, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        raise
