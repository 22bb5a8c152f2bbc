"""Chat instances that share no folder, only a bucket: the files of a cluster all come from an S3-compatible store
(moto in server mode), uploads through one instance download through every other, directly and through nginx."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from cluster import Cluster, ClusterSpec, create_chat
from harness import MotoServer, expect_status
from test_5_routes import make_png


@pytest.fixture(scope="module")
def bucket_cluster(tmp_path_factory, parley_binary, postgres, jwt_pem):
    """1 user, 2 chat (each with its own data folder) and 1 mail instance and nginx, the files in one moto bucket."""
    moto = MotoServer(tmp_path_factory.mktemp("moto")).start()
    bucket = moto.bucket()
    cluster = Cluster(tmp_path_factory.mktemp("bucket"), parley_binary, postgres, postgres.create_database(), jwt_pem,
                      ClusterSpec(users=1, chats=2, mails=1), env=moto.parley_env(bucket))
    try:
        with cluster.running():
            yield cluster, moto, bucket
    finally:
        moto.stop()


def test_files_stored_by_one_chat_instance_download_from_the_other(bucket_cluster):
    """[cluster] An image and a file sent through chat1 download through chat2 and through nginx; the bucket holds
    them and no chat instance's data folder does."""
    cluster, moto, bucket = bucket_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)["id"]
    chat1 = cluster.instances["chat1"].client.with_token(alice.access_token)
    png = make_png(400, 300)
    pdf = b"%PDF-1.4\n" + uuid.uuid4().hex.encode() * 200 + b"\n%%EOF\n"
    image = expect_status(chat1.post(f"/api/v1/chats/{chat}/messages", data={"clientMessageId": uuid.uuid4().hex},
                                     files={"image": ("p.png", png, "image/png")}), 201)["message"]["image"]
    document = expect_status(chat1.post(f"/api/v1/chats/{chat}/messages", data={"clientMessageId": uuid.uuid4().hex},
                                        files={"file": ("notes.pdf", pdf, "application/pdf")}), 201)["message"]["file"]
    chat2 = cluster.instances["chat2"].base_url
    for url, expected in ((image["url"], png), (document["url"], pdf)):
        direct = requests.get(chat2 + url.replace(cluster.url, ""), timeout=10)
        assert direct.status_code == 200 and direct.content == expected, (url, direct.status_code, direct.text[:200])
        for _ in range(2):
            through = requests.get(url if url.startswith("http") else cluster.url + url, timeout=10)
            assert through.status_code == 200 and through.content == expected
    thumbnail = requests.get(chat2 + image["thumbnailUrl"].replace(cluster.url, ""), timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"
    objects = moto.objects(bucket)
    assert png in objects.values() and pdf in objects.values() and len(objects) == 3, sorted(objects)
    for name in cluster.names("chat"):
        files = Path(cluster.instances[name].env["PARLEY_DATA_DIR"]) / "files"
        assert not files.exists() or not [path for path in files.rglob("*") if path.is_file()], name
