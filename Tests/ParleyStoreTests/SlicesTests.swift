import ParleyCore
import Testing

@Suite("A long list sent in slices")
struct SlicesTests {
    @Test("every element once, in order, in pieces of at most the size", arguments: [0, 1, 499, 500, 501, 1000, 1234])
    func everyElementOnceInOrder(count: Int) {
        let list = Array(0..<count)
        let slices = list.slices(of: 500)
        #expect(slices.flatMap { $0 } == list)
        #expect(slices.allSatisfy { !$0.isEmpty && $0.count <= 500 })
        #expect(slices.count == (count + 499) / 500)
    }
}
