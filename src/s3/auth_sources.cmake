# SigV4 verification/signing, aws-chunked decoding and XML: the s3 module's auth and parsing
# layer, included by src/s3/CMakeLists.txt (paths relative to src/s3).
set(VLAKE_S3_AUTH_SOURCES sigv4.cc sigv2.cc aws_chunked.cc xml.cc)
set(VLAKE_S3_AUTH_TESTS sigv4_test.cc sigv2_test.cc aws_chunked_test.cc xml_test.cc)
