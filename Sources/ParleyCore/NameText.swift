/// The characters a name (a person's display name, a group's name) may not hold, for every service alike.
public enum NameText {
    /// Whether `name` holds a control character or an invisible format character (Unicode category Cf: bidi overrides,
    /// embeddings and isolates, directional marks, zero-width spaces), which could make a name pass for another or
    /// reorder the text shown after it. The zero width joiner stays allowed: emoji sequences (👩‍💻) are made with it.
    public static func hasHiddenCharacters(_ name: String) -> Bool {
        name.unicodeScalars.contains {
            $0.properties.generalCategory == .control || $0.properties.generalCategory == .format && $0.value != 0x200D
        }
    }
}
