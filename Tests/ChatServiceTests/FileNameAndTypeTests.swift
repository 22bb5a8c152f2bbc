import Foundation
import Testing

@testable import ChatService

@Suite("File names made harmless, types told from bytes, images bounded before decoding")
struct FileNameAndTypeTests {
    @Test(
        "a sanitised name has no folder, no control, format or separator character, and fits the bounds",
        arguments: [
            ("../../x", "x"), ("a/b\\c.txt", "c.txt"), ("..", "file"), (".", "file"), ("", "file"), ("/", "file"),
            ("e\u{301}te\u{301}.txt", "été.txt"), ("x\u{202E}gpj.exe", "xgpj.exe"), ("\u{FEFF}bom.txt", "bom.txt"),
            ("line\u{2029}break", "linebreak"), ("tab\there", "tabhere"), (".hidden", ".hidden"),
        ]
    )
    func sanitized(raw: String, expected: String) {
        #expect(FileName.sanitized(raw) == expected)
    }

    @Test("a long name is cut to 200 characters and 255 bytes, keeping its extension")
    func long() {
        let name = FileName.sanitized(String(repeating: "é", count: 300) + ".pdf")
        #expect(name.hasSuffix(".pdf") && name.count <= 200 && name.utf8.count <= 255)
        #expect(FileName.sanitized(nil) == "file")
    }

    @Test("Content-Disposition: an ASCII fallback and the exact name in RFC 8187 encoding")
    func disposition() {
        #expect(
            FileName.contentDisposition("attachment", name: "naïve \"q\" 5%.txt")
                == "attachment; filename=\"na_ve _q_ 5_.txt\"; filename*=UTF-8''na%C3%AFve%20%22q%22%205%25.txt"
        )
    }

    @Test(
        "types come from the first bytes, never the name or the claim",
        arguments: [
            (Array("%PDF-1.7".utf8), "application/pdf"), ([0x50, 0x4B, 0x03, 0x04, 0, 0], "application/zip"),
            ([0x1F, 0x8B, 8, 0], "application/gzip"), (Array("hello\n".utf8), "text/plain; charset=utf-8"),
            (Array("<html><script>x</script>".utf8), "text/plain; charset=utf-8"), ([0, 0, 0, 0x18] + Array("ftypmp42".utf8), "video/mp4"),
            (Array("RIFF\0\0\0\0WEBPVP8 ".utf8), "image/webp"), ([0xC3, 0x28], "application/octet-stream"),
            (Array("BM".utf8), "text/plain; charset=utf-8"), ([0x00, 0x01, 0x02], "application/octet-stream"), ([], "application/octet-stream"),
        ] as [([UInt8], String)]
    )
    func detect(bytes: [UInt8], type: String) {
        #expect(FileType.detect(bytes) == type)
    }

    @Test("a part's file name: quoted with escapes and semicolons, or RFC 8187's filename*")
    func multipartFilename() {
        #expect(MultipartForm.filename(in: #"form-data; name="file"; filename="a;b \"c\".txt""#) == #"a;b "c".txt"#)
        #expect(MultipartForm.filename(in: #"form-data; name="file"; filename="C:\dir\x.txt""#) == #"C:\dir\x.txt"#)
        #expect(MultipartForm.filename(in: "form-data; name=\"file\"; filename=\"x.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt") == "été.txt")
        #expect(MultipartForm.filename(in: #"form-data; name="text""#) == nil)
        #expect(MultipartForm.parameters(in: #"form-data; name="image"; filename="""#)["filename"] == "")
    }

    @Test("images are decoded only within 16,384 pixels a side and 40 megapixels; a GIF's frames count")
    func bounds() {
        func png(_ width: Int, _ height: Int) -> ImageInfo { ImageInfo(contentType: "image/png", width: width, height: height) }
        #expect(ImageInspector.isDecodable(png(16_384, 2_441), bytes: []))
        #expect(!ImageInspector.isDecodable(png(50_000, 50_000), bytes: []))
        #expect(!ImageInspector.isDecodable(png(16_385, 1), bytes: []))
        #expect(!ImageInspector.isDecodable(png(8_000, 5_001), bytes: []))
        #expect(!ImageInspector.isDecodable(ImageInfo(contentType: "image/jpeg", width: nil, height: nil), bytes: []))
        // A 1×1 screen holding a 60,000 × 60,000 frame.
        var gif: [UInt8] = Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]
        gif += [0x2C, 0, 0, 0, 0, 0x60, 0xEA, 0x60, 0xEA, 0, 2, 1, 0, 0, 0x3B]
        let info = ImageInspector.inspect(gif)
        #expect(info?.width == 1 && info?.height == 1)
        #expect(ImageInspector.gifFrameBounds(gif).map { [$0.0, $0.1] } == [60_000, 60_000])
        #expect(!ImageInspector.isDecodable(info!, bytes: gif))
    }
}
