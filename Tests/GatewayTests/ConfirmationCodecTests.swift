import Testing
@testable import Gateway

@Suite struct ConfirmationCodecTests {
    /// The serial check reads contiguous bytes; it must accept exactly the visible ASCII bytes,
    /// alone or among others, as the per-character check did.
    @Test func serialsAreVisibleASCIIExactly() {
        for byte in 0...255 {
            let expected = byte > 0x20 && byte < 0x7F
            let alone = String(decoding: [UInt8(byte)], as: UTF8.self)
            let inside = String(decoding: [0x53, 0x2D, UInt8(byte), 0x31] + Array(repeating: 0x30, count: 20), as: UTF8.self)
            #expect(ConfirmationCodec.isVisibleASCII(alone) == expected, "byte \(byte)")
            #expect(ConfirmationCodec.isVisibleASCII(inside) == expected, "byte \(byte) inside")
        }
        #expect(ConfirmationCodec.isVisibleASCII(""))
        #expect(!ConfirmationCodec.isVisibleASCII("S-1\u{e9}"))
        #expect(ConfirmationCodec.isVisibleASCII(Substring("xS-1x").dropFirst().dropLast().description))
    }
}
