import COpenSSL

/// `n` cryptographically secure random bytes from OpenSSL's DRBG, for device keys, connection ids and secrets.
///
/// Traps if the generator cannot be seeded: predictable "random" keys would be worse than stopping.
func randomBytes(_ n: Int) -> [UInt8] {
    precondition(n >= 0 && n <= Int(Int32.max), "randomBytes: bad count \(n)")
    var out = [UInt8](repeating: 0, count: n)
    guard n > 0 else { return out }
    let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(n)) == 1 }
    precondition(ok, "OpenSSL RAND_bytes failed (error \(ERR_get_error()))")
    return out
}
