"""CompleteMultipartUpload repeated after it succeeded (an SDK retrying a lost response):
200 with the same ETag, as S3 answers, also after a server restart; a different parts list,
an overwritten key, a copied object or an upload that never existed still get 404
NoSuchUpload. boto3 against a real `vlake serve`."""

import hashlib
import os
import shutil
import tempfile
import unittest

from client_util import MIB
from vlake_server import VlakeServer, boto3_client


class MultipartRetryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vlake-mpretry-")
        self.data = os.path.join(self.tmp, "data")
        self.server = VlakeServer(data_dir=self.data).start()
        self.s3 = boto3_client(self.server)
        self.s3.create_bucket(Bucket="bkt")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_no_such_upload(self, **kwargs):
        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.complete_multipart_upload(Bucket="bkt", **kwargs)
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchUpload")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    def upload(self, key, datas):
        uid = self.s3.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
        parts = []
        for i, d in enumerate(datas, start=1):
            etag = self.s3.upload_part(Bucket="bkt", Key=key, UploadId=uid, PartNumber=i, Body=d)["ETag"]
            parts.append({"PartNumber": i, "ETag": etag})
        return uid, parts

    def test_repeat_answers_same_etag_until_key_changes(self):
        datas = [os.urandom(5 * MIB), b"tail bytes"]
        uid, parts = self.upload("mp", datas)
        first = self.s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=uid,
                                                  MultipartUpload={"Parts": parts})
        md5s = b"".join(hashlib.md5(d).digest() for d in datas)
        self.assertEqual(first["ETag"], '"%s-2"' % hashlib.md5(md5s).hexdigest())
        again = self.s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=uid,
                                                  MultipartUpload={"Parts": parts})
        self.assertEqual(again["ETag"], first["ETag"])
        self.assertEqual((again["Bucket"], again["Key"]), ("bkt", "mp"))
        # ETags may come back without quotes or in upper case: the same list.
        bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"].strip('"').upper()} for p in parts]
        self.assertEqual(self.s3.complete_multipart_upload(
            Bucket="bkt", Key="mp", UploadId=uid, MultipartUpload={"Parts": bare})["ETag"], first["ETag"])
        # A different list is not a repeat.
        self.assert_no_such_upload(Key="mp", UploadId=uid, MultipartUpload={"Parts": parts[:1]})
        self.assert_no_such_upload(Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            parts[0], {"PartNumber": 3, "ETag": parts[1]["ETag"]}]})
        self.assert_no_such_upload(Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            parts[0], {"PartNumber": 2, "ETag": '"%s"' % ("0" * 32)}]})
        # Another key, or an upload id that never existed.
        self.assert_no_such_upload(Key="other", UploadId=uid, MultipartUpload={"Parts": parts})
        self.assert_no_such_upload(Key="mp", UploadId="0" * 44, MultipartUpload={"Parts": parts})
        self.assertEqual(self.s3.get_object(Bucket="bkt", Key="mp")["Body"].read(), b"".join(datas))

        # Durable: the same answer after a restart.
        self.server.stop()
        self.server.start()
        self.s3 = boto3_client(self.server)
        again = self.s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=uid,
                                                  MultipartUpload={"Parts": parts})
        self.assertEqual(again["ETag"], first["ETag"])

        # A copy of the object is not the upload's result.
        self.s3.copy_object(Bucket="bkt", Key="copy", CopySource={"Bucket": "bkt", "Key": "mp"})
        self.assert_no_such_upload(Key="copy", UploadId=uid, MultipartUpload={"Parts": parts})
        # Once the key is overwritten the upload is gone for good.
        self.s3.put_object(Bucket="bkt", Key="mp", Body=b"new")
        self.assert_no_such_upload(Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
        self.assertEqual(self.s3.get_object(Bucket="bkt", Key="mp")["Body"].read(), b"new")

    def test_aborted_upload_is_not_a_repeat(self):
        uid, parts = self.upload("ab", [b"only part"])
        self.s3.abort_multipart_upload(Bucket="bkt", Key="ab", UploadId=uid)
        self.assert_no_such_upload(Key="ab", UploadId=uid, MultipartUpload={"Parts": parts})
        # A later upload to the same key completes; the aborted id still does not.
        uid2, parts2 = self.upload("ab", [b"second"])
        self.s3.complete_multipart_upload(Bucket="bkt", Key="ab", UploadId=uid2,
                                          MultipartUpload={"Parts": parts2})
        self.assert_no_such_upload(Key="ab", UploadId=uid, MultipartUpload={"Parts": parts})


if __name__ == "__main__":
    unittest.main()
