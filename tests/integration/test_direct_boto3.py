"""How an S3 client built for cuObject-style RDMA meets vlake: boto3 adds a signed
x-amz-rdma-token (a cuObject DC token, which vlake parses and declines) and gets the
documented answers - a GET still returns its body with x-amz-rdma-reply: 501, a PUT gets
501 RDMANotSupported and stores nothing, a malformed token gets 400 InvalidRDMAToken."""

import unittest

from botocore.exceptions import ClientError

from vlake_server import VlakeServer, boto3_client

CUOBJECT_TOKEN = ("00007f3a2c000000:00100000:0001a2b3:0001:00abcd:1:"
                  "fe800000000000000202c9fffe0a0b0c")


def with_token(client, token):
    """Adds x-amz-rdma-token before signing, so SigV4 covers it (as cuObject clients do)."""
    def add(request, **kwargs):
        request.headers["x-amz-rdma-token"] = token
    client.meta.events.register("before-sign.s3.*", add)
    return client


class DirectBoto3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = VlakeServer().start()
        cls.s3 = boto3_client(cls.server)
        cls.s3.create_bucket(Bucket="rdma")
        cls.s3.put_object(Bucket="rdma", Key="obj", Body=b"payload bytes")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_cuobject_get_is_declined_and_served_over_http(self):
        s3 = with_token(boto3_client(self.server), CUOBJECT_TOKEN)
        resp = s3.get_object(Bucket="rdma", Key="obj")
        self.assertEqual(resp["Body"].read(), b"payload bytes")
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.assertEqual(headers.get("x-amz-rdma-reply"), "501")

    def test_cuobject_put_is_refused_and_stores_nothing(self):
        s3 = with_token(boto3_client(self.server), CUOBJECT_TOKEN)
        with self.assertRaises(ClientError) as cm:
            s3.put_object(Bucket="rdma", Key="never", Body=b"")
        self.assertEqual(cm.exception.response["Error"]["Code"], "RDMANotSupported")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 501)
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket="rdma", Key="never")

    def test_malformed_token_is_400(self):
        s3 = with_token(boto3_client(self.server), "00007f3a2c000000:zz")
        with self.assertRaises(ClientError) as cm:
            s3.get_object(Bucket="rdma", Key="obj")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidRDMAToken")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)


if __name__ == "__main__":
    unittest.main()
