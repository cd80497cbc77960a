import Glibc

/// Files and directories: /proc for the bench's figures, result files, and errno in words.
extension Posix {
    /// Opens `path` read-only and close-on-exec; nil when it cannot be opened (errno tells why).
    public static func openForReading(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }

    /// Creates `path` (mode 0644) or truncates it, write-only and close-on-exec; nil when it cannot be opened
    /// (errno tells why).
    public static func createFile(_ path: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        return fd >= 0 ? fd : nil
    }

    /// The names in the directory at `path` but `.` and `..`, or nil when it cannot be opened.
    public static func listDirectory(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `errno` in words (strerror): `No such file or directory`.
    public static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
