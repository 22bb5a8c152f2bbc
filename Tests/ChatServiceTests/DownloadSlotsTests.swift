import ParleyCore
import Testing

@testable import ChatService

@Suite("Downloads at once: a cap, given back whatever becomes of the body")
struct DownloadSlotsTests {
    @Test func slotsAreCappedAndGivenBackWhenDropped() throws {
        let slots = DownloadSlots(limit: 2)
        var held: [DownloadSlots.Slot] = [try slots.take(), try slots.take()]
        #expect(slots.count == 2)
        #expect(throws: APIError.self) { try slots.take() }
        #expect(slots.count == 2, "a refused take holds nothing")
        held.removeLast()
        #expect(slots.count == 1)
        held.append(try slots.take())
        held[0].release()
        held[0].release()
        #expect(slots.count == 1, "a slot is given back once")
        held.removeAll()
        #expect(slots.count == 0)
    }
}
