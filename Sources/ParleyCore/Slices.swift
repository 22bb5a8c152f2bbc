extension Array {
    /// The array in consecutive pieces of at most `size` elements, in order (none for an empty array): a list too long for
    /// one statement or one request, sent in several.
    public func slices(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: self.count, by: size).map { self[$0..<Swift.min($0 + size, self.count)] }
    }
}
