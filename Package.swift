// swift-tools-version:6.0
// JointLend — joint-lending partner gateway.
// No package dependencies: the toolchain plus C system libraries (OpenSSL 3, SQLite 3).
import PackageDescription

let package = Package(
    name: "JointLend",
    products: [
        .executable(name: "jointlend", targets: ["jointlend"]),
        .executable(name: "jointlend-bench", targets: ["jointlend-bench"]),
    ],
    targets: [
        // C boundary
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CPosix"),
        .target(name: "CSQLiteVFS", dependencies: ["CSQLite"]),

        // Modules (see ../shared/design/ARCHITECTURE.md for the dependency direction)
        .target(name: "LendingCore"),
        .target(name: "PartnerSigning", dependencies: ["COpenSSL"]),
        .target(name: "Storage", dependencies: ["CSQLite", "CSQLiteVFS", "LendingCore", "PartnerSigning"]),
        .target(name: "HTTP", dependencies: ["CPosix"]),
        .target(name: "Gateway", dependencies: ["LendingCore", "PartnerSigning", "Storage", "HTTP"]),

        // Executables
        .executableTarget(name: "jointlend", dependencies: ["Gateway", "LendingCore", "PartnerSigning", "Storage", "HTTP"]),
        .executableTarget(name: "jointlend-bench", dependencies: ["Gateway", "LendingCore", "PartnerSigning", "Storage", "HTTP"]),

        // Tests mirror modules one to one
        .testTarget(name: "LendingCoreTests", dependencies: ["LendingCore"]),
        .testTarget(name: "PartnerSigningTests", dependencies: ["PartnerSigning"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "LendingCore", "PartnerSigning"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "LendingCore", "PartnerSigning", "Storage", "HTTP"]),
    ],
    swiftLanguageModes: [.v6]
)
