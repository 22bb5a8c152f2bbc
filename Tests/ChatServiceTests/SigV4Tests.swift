import Crypto
import Foundation
import ParleyCore
import Testing

@testable import ChatService

/// The signer against AWS's published answers: the Signature Version 4 test suite (service `service`, as transcribed in
/// aws-sdk-js-v3's `signature-v4/src/suite.fixture.ts`) and the worked examples of the S3 documentation ("Signature
/// calculations for the Authorization header", bucket `examplebucket`). No expected value here was computed by us.
@Suite("AWS Signature Version 4")
struct SigV4Tests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var name: String
        var method = "GET"
        var path = "/"
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        var body = ""
        var signedHeaders = "host;x-amz-date"
        var signature: String
        var testDescription: String { self.name }
    }

    static let suite = SigV4(
        accessKeyID: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        sessionToken: nil,
        region: "us-east-1",
        service: "service"
    )
    /// 2015-08-30T12:36:00Z.
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)

    static let vectors: [Vector] = [
        Vector(name: "get-vanilla", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(
            name: "get-header-key-duplicate",
            headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
        ),
        Vector(
            name: "get-header-value-order",
            headers: [("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"
        ),
        Vector(
            name: "get-header-value-trim",
            headers: [("My-Header1", " value1 "), ("My-Header2", " \"a   b   c\" ")],
            signedHeaders: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        ),
        Vector(
            name: "get-unreserved",
            path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
        ),
        Vector(name: "get-utf8", path: "/\u{1234}", signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        Vector(
            name: "get-vanilla-empty-query-key",
            query: [("Param1", "value1")],
            signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"
        ),
        Vector(
            name: "get-vanilla-query-order-key-case",
            query: [("Param2", "value2"), ("Param1", "value1")],
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
        Vector(
            name: "get-vanilla-query-unreserved",
            query: [
                (
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                )
            ],
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
        Vector(
            name: "get-vanilla-utf8-query",
            query: [("\u{1234}", "bar")],
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        ),
        Vector(name: "post-vanilla", method: "POST", signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Vector(
            name: "post-header-key-sort",
            method: "POST",
            headers: [("My-Header1", "value1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
        ),
        Vector(
            name: "post-header-value-case",
            method: "POST",
            headers: [("My-Header1", "VALUE1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"
        ),
        Vector(
            name: "post-vanilla-query",
            method: "POST",
            query: [("Param1", "value1")],
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        ),
        Vector(
            name: "post-vanilla-query-nonunreserved",
            method: "POST",
            query: [("@#$%^", ""), ("+", "/,?><`\";:\\|][{}")],
            signature: "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e"
        ),
        Vector(
            name: "post-x-www-form-urlencoded",
            method: "POST",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        ),
        Vector(
            name: "post-x-www-form-urlencoded-parameters",
            method: "POST",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf8")],
            body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"
        ),
    ]

    static func hash(_ text: String) -> String { SigV4.hex(SHA256.hash(data: Data(text.utf8))) }

    @Test("the test suite's requests are signed as AWS signs them", arguments: Self.vectors)
    func suiteVector(_ vector: Vector) {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + vector.headers
        let authorization = Self.suite.authorization(
            method: vector.method,
            path: vector.path,
            query: vector.query,
            headers: headers,
            payloadHash: Self.hash(vector.body),
            date: Self.suiteDate
        )
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=\(vector.signedHeaders), Signature=\(vector.signature)"
        )
    }

    @Test("get-vanilla's canonical request and string to sign are the suite's, byte for byte")
    func canonicalForms() {
        let canonical = SigV4.canonicalRequest(
            method: "GET",
            path: "/",
            query: [],
            headers: SigV4.canonicalHeaders([("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]),
            payloadHash: SigV4.emptyPayloadHash
        )
        #expect(
            canonical
                == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        // The suite's string to sign ends with this hash of the canonical request.
        #expect(Self.hash(canonical) == "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
    }

    @Test("post-sts-header-before: a session token is sent and signed, and x-amz-date is added by the signer")
    func sessionToken() throws {
        let token =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        let signer = SigV4(
            accessKeyID: "AKIDEXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: token,
            region: "us-east-1",
            service: "service"
        )
        let headers = signer.sign(
            method: "POST",
            path: "/",
            query: [],
            headers: [("host", "example.amazonaws.com")],
            payloadHash: SigV4.emptyPayloadHash,
            date: Self.suiteDate
        )
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(headers.first { $0.0 == "x-amz-security-token" }?.1 == token)
        #expect(
            headers.last?.1
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        )
    }

    static let s3 = SigV4(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        sessionToken: nil,
        region: "us-east-1",
        service: "s3"
    )
    /// 2013-05-24T00:00:00Z.
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)

    func s3Authorization(
        _ method: String,
        _ path: String,
        query: [(String, String)] = [],
        headers: [(String, String)] = [],
        body: String = ""
    )
        -> String
    {
        let hash = Self.hash(body)
        let all = [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"), ("x-amz-content-sha256", hash)] + headers
        return Self.s3.authorization(method: method, path: path, query: query, headers: all, payloadHash: hash, date: Self.s3Date)
    }

    @Test("the S3 documentation's examples: GET with a range, PUT of a key with $, a subresource, a listing")
    func s3Examples() {
        let credential = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        #expect(
            self.s3Authorization("GET", "/test.txt", headers: [("Range", "bytes=0-9")])
                == "\(credential), SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        #expect(
            self.s3Authorization(
                "PUT",
                "/test$file.text",
                headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                body: "Welcome to Amazon S3."
            )
                == "\(credential), SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        )
        #expect(
            self.s3Authorization("GET", "/", query: [("lifecycle", "")])
                == "\(credential), SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        )
        #expect(
            self.s3Authorization("GET", "/", query: [("max-keys", "2"), ("prefix", "J")])
                == "\(credential), SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    }

    @Test("percent-encoding: unreserved characters kept, spaces %20 (never +), UTF-8 bytes, slashes kept only in paths")
    func encoding() {
        #expect(SigV4.encode("a b/c~d+e$é", keepingSlashes: true) == "a%20b/c~d%2Be%24%C3%A9")
        #expect(SigV4.encode("a/b", keepingSlashes: false) == "a%2Fb")
        #expect(SigV4.encode("*'()!=&%", keepingSlashes: false) == "%2A%27%28%29%21%3D%26%25")
        #expect(SigV4.encode("AZaz09-._~", keepingSlashes: false) == "AZaz09-._~")
        #expect(SigV4.encode("\u{1F600}", keepingSlashes: false) == "%F0%9F%98%80")
        #expect(SigV4.canonicalPath("") == "/")
        // Already-encoded text is encoded again: keys are sent as they are, never decoded on the way.
        #expect(SigV4.canonicalPath("/b/a%2Fb") == "/b/a%252Fb")
        #expect(SigV4.canonicalPath("/bucket//key/") == "/bucket//key/")
        // Sorted by encoded name, then value; a name alone gets `=`.
        #expect(SigV4.canonicalQuery([("b", "2"), ("a", "y"), ("a", "x"), ("c d", ""), ("B", "1")]) == "B=1&a=x&a=y&b=2&c%20d=")
        #expect(SigV4.canonicalQuery([("continuation-token", "1/A+b=")]) == "continuation-token=1%2FA%2Bb%3D")
    }

    @Test("dates are written in UTC whatever the time zone")
    func dates() {
        #expect(SigV4.timestamp(Self.suiteDate) == "20150830T123600Z")
        #expect(SigV4.day(Date(timeIntervalSince1970: 1_369_353_599)) == "20130523")
    }

    @Test("addresses: path style names the bucket in the path, virtual-host style in the host; ports and IPv6 kept")
    func addresses() {
        func store(_ endpoint: String, _ style: S3Settings.Style, prefix: String = "") -> S3BlobStore {
            S3BlobStore(
                settings: S3Settings(
                    bucket: "files",
                    prefix: prefix,
                    endpoint: endpoint,
                    region: "us-east-1",
                    style: style,
                    accessKeyID: "a",
                    secretAccessKey: "b"
                )
            )
        }
        let path = store("http://127.0.0.1:9000", .path, prefix: "prod/")
        #expect(path.address(key: "k") == ("http://127.0.0.1:9000", "127.0.0.1:9000", "/files/prod/k"))
        #expect(path.address(key: nil) == ("http://127.0.0.1:9000", "127.0.0.1:9000", "/files"))
        let virtual = store("https://s3.eu-west-1.amazonaws.com", .virtual)
        #expect(virtual.address(key: "k") == ("https://files.s3.eu-west-1.amazonaws.com", "files.s3.eu-west-1.amazonaws.com", "/k"))
        #expect(virtual.address(key: nil) == ("https://files.s3.eu-west-1.amazonaws.com", "files.s3.eu-west-1.amazonaws.com", "/"))
        #expect(store("http://[::1]:9000", .path).address(key: "k") == ("http://[::1]:9000", "[::1]:9000", "/files/k"))
    }
}
