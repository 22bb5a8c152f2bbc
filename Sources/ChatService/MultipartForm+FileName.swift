import Foundation

extension MultipartForm {
    /// The file name a part's `Content-Disposition` gives: `filename*` (RFC 8187, `UTF-8''…`) when present and
    /// decodable, else `filename` (a quoted string, with backslash escapes, as browsers send it: raw UTF-8); nil when
    /// the part is not a file. Sanitising is the caller's (see ``FileName``).
    static func filename(in header: String) -> String? {
        let parameters = Self.parameters(in: header)
        if let extended = parameters["filename*"], let decoded = Self.decodeExtended(extended) { return decoded }
        return parameters["filename"]
    }

    /// The `name=value` parameters after the first `;`, names lower-cased, quoted values unquoted (a `;` inside quotes
    /// is part of the value).
    static func parameters(in header: String) -> [String: String] {
        var result: [String: String] = [:]
        let characters = Array(header)
        var index = characters.firstIndex(of: ";") ?? characters.endIndex
        while index < characters.endIndex {
            index += 1
            while index < characters.endIndex, characters[index] == " " || characters[index] == "\t" { index += 1 }
            var name = ""
            while index < characters.endIndex, characters[index] != "=", characters[index] != ";" {
                name.append(characters[index])
                index += 1
            }
            var value = ""
            if index < characters.endIndex, characters[index] == "=" {
                index += 1
                if index < characters.endIndex, characters[index] == "\"" {
                    index += 1
                    while index < characters.endIndex, characters[index] != "\"" {
                        // `\"` and `\\` (as curl and urllib3 write them); any other backslash is itself (a Windows path).
                        if characters[index] == "\\", index + 1 < characters.endIndex, characters[index + 1] == "\"" || characters[index + 1] == "\\"
                        {
                            index += 1
                        }
                        value.append(characters[index])
                        index += 1
                    }
                    while index < characters.endIndex, characters[index] != ";" { index += 1 }
                } else {
                    while index < characters.endIndex, characters[index] != ";" {
                        value.append(characters[index])
                        index += 1
                    }
                    value = value.trimmingCharacters(in: .whitespaces)
                }
            }
            let key = name.trimmingCharacters(in: .whitespaces).lowercased()
            if !key.isEmpty, result[key] == nil { result[key] = value }
        }
        return result
    }

    /// `UTF-8'language'percent-encoded` (RFC 8187); nil for another charset or bad encoding.
    static func decodeExtended(_ value: String) -> String? {
        let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        return String(parts[2]).removingPercentEncoding
    }
}
