// libFuzzer entry for HTTPRequestParser, compiled together with the parser's sources by run.sh
// (libFuzzer supplies main). Besides "no crash", it checks the parser's central promise: the
// same input split differently gives the same requests and the same error.

private func outcome(_ data: UnsafeBufferPointer<UInt8>, cuts: [Int], limits: HTTPRequestParser.Limits) -> String {
    var parser = HTTPRequestParser(limits: limits)
    var result = ""
    var start = 0
    for cut in cuts + [data.count] where cut >= start {
        parser.append(contentsOf: data[start..<cut])
        start = cut
        do {
            while let request = try parser.next() {
                result += "\(request.method) \(request.target) \(request.keepAlive) \(request.headers.count) \(request.body.count)|"
                precondition(request.body.count <= limits.bodyBytesMax, "body over its limit")
                precondition(request.headers.count <= limits.headerCountMax, "header count over its limit")
            }
        } catch {
            return result + "error \(error)"
        }
    }
    return result
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let data = UnsafeBufferPointer(start: bytes, count: size)
    let small = HTTPRequestParser.Limits(requestLineBytesMax: 64, headerBytesMax: 128, headerCountMax: 4, bodyBytesMax: 32)
    for limits in [HTTPRequestParser.Limits(), small] {
        let whole = outcome(data, cuts: [], limits: limits)
        let first = size > 0 ? Int(data[0]) % (size + 1) : 0
        let second = size > 1 ? min(size, first + Int(data[size - 1]) % 7 + 1) : size
        let split = outcome(data, cuts: [first, second], limits: limits)
        precondition(whole == split, "split at \(first),\(second) changed the result: \(whole) vs \(split)")
    }
    return 0
}
