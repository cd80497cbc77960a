import PushCore

/// Fixed keys for the notification tests, made once with `openssl genpkey` (never used anywhere else): PEM text as
/// the files hold it.
enum NotifyTestKeys {
    /// An EC P-256 key, PKCS#8, as Apple's `.p8` files hold one.
    static let ecP256 = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPDR8yXi1yVWL7HA2
        ihQXW9rwMPSK9IeRAn2hbMKqIxKhRANCAAR4y7sEty1IbtvrEam9e0tKEt3rLv6T
        keDBXqItPNkPJjw7RxSlT4M5WH42s0Xdxpeij58fM/gbR8MugW0EIZNA
        -----END PRIVATE KEY-----
        """

    /// Its public key (`openssl pkey -pubout`).
    static let ecP256Public = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeMu7BLctSG7b6xGpvXtLShLd6y7+
        k5HgwV6iLTzZDyY8O0cUpU+DOVh+NrNF3caXoo+fHzP4G0fDLoFtBCGTQA==
        -----END PUBLIC KEY-----
        """

    /// The same key in the older SEC 1 form (`BEGIN EC PRIVATE KEY`).
    static let ecP256SEC1 = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIDw0fMl4tclVi+xwNooUF1va8DD0ivSHkQJ9oWzCqiMSoAoGCCqGSM49
        AwEHoUQDQgAEeMu7BLctSG7b6xGpvXtLShLd6y7+k5HgwV6iLTzZDyY8O0cUpU+D
        OVh+NrNF3caXoo+fHzP4G0fDLoFtBCGTQA==
        -----END EC PRIVATE KEY-----
        """

    /// The same key encrypted with a passphrase: refused, without asking for one.
    static let ecP256Encrypted = """
        -----BEGIN ENCRYPTED PRIVATE KEY-----
        MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjUMoRRRyBVkwICCAAw
        DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEELVBRKf49pTSd4R9HiBBdlkEgZAZ
        L+AL62REgz0z0tt6n2H1KbvHeierH/LvZwsoYAu+wF+reiaPOMkwURZu698owzLL
        9tYkxraodAg3j9aSGjJMg5+tQ5MNHDPyHqIkZ36GRT3yczsq3wV3NpfWlQowbhQB
        c8fIxg8zNPphar3/DMulQv/m6WMgPD2uHcnh3emfnfkoxBxRQbgoWWn03rdgfZA=
        -----END ENCRYPTED PRIVATE KEY-----
        """

    /// An EC key on P-384: not for ES256.
    static let ecP384 = """
        -----BEGIN PRIVATE KEY-----
        MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDC4POk77wOHA37YeG4/
        5FMQAsolb81dnHITAlSS0MHoBm8C7M4SwSwamkxjaGmcTsChZANiAAQYpIVDnf0a
        2yVMBqF9Dajz6g+GwXXesHWvfzAegK1istxduQP4KVbe1VtiB4KAZ8pc1QEOPK73
        VjbjhS7ZZ8dRu8lAnCjcguyVUF2Uisy3201caDqgglTwEPbwEp69gHg=
        -----END PRIVATE KEY-----
        """

    /// An RSA 2048 key, PKCS#8, as Google's service-account files hold one.
    static let rsa2048 = """
        -----BEGIN PRIVATE KEY-----
        MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCaYh2IDNOwY8di
        OPqJ0r1kzie6IvnagbDoPCK82nkq7lL/nuJv1dx5ZpywAiN0QCUkZAyE90s3xMLJ
        uc9j8FdABrnkq3+EvQ4oOV83S58JI5IWjPBmKIMf6x36yeMj8DtEF4RecIj3rR0W
        31wh7WB6/aeK7fiv/fTheFH61qRN4ySNAuAyntu2bF36nDkwrL995By5wttrYeis
        ad61+l7QGDGXMfePFD+bURiOP4xWYuTfegtfgmMW5DT7oG+WWLiwrUuqAoMzDL7J
        /aln5QyFMYaFnLg2WdIef7XXBc25TdrEhiNZet2UNucUmNSlZtttjd6h9h65Ywy/
        jIIH38qHAgMBAAECggEACUN+6yV95FUwZxvtKKz9EVnvd1NW874Ze+3z1ao0YBeZ
        4l3Jz5UhHCXEnCkcsIKS1/qq56WhHVEQsSMVpzUKPzzIFckWp0Pi4BYFOR+wBM/e
        Gb1ORYsDxzwH+f74QrVNERpqJnKRPW9lUfSIJj8ErYyf6425APJ3qbnbDXaouEWj
        f1hF1Z9B8PBMSlyRafQ+OS+CRpBslFU2zrsYzLhgJ3FpuAZKAO2W59R79eEmuIbQ
        BakQfeb7+1G0yoEtg6tffhMsDWj7aR/wRwxRKSX9LBSveiBzpFNlV0N0O/Pa07Pq
        VV7F2hCU8rh+l18/2Zm2cQWMXVO+LAJ8Wp9R0I/haQKBgQDYhMSzhvCyalQbL0es
        BJFOg8HaLfWtdp5kQ0Bkk4yifge89MHbwgBzUcYxYjY4kBpiAlLGu4vE5tbVqAqC
        Vhb93r5vZfPyebgAzL6o+kYlukkxcQijfCObI2FvRA82n80vXHiJXlQit6vPY7g2
        BnxrLMUYAWaVOP4DrAdqDet72QKBgQC2iNPTCWqNZ/D92DJKrDX9bowlLpE/ORkc
        17Sfi6Ym1WVuY54IpeHH1VD6nOCiVj8Z7UJ4Kwtb/sr/St1OWvyupmdqJIwFmfad
        s4QOwIvniWUnr7aAJ4rU/0xEmDr9l/DU/F+LzNaHFqXDO/iHY+6zIGX/Cw4OYj5o
        iUWYGRddXwKBgCrwYaYM2802QwnFHZyip0J/5MDlHnTRMmZF5A5OKLTM87HohE2V
        sssr63c9t+0Nvv2y4kGhTf21neNvWO4yLosYUoH7IR70PqaB9EnEoIa44+0XMpRh
        eRo6MQeE4tN9a4658vmjKGJeNIeDijPEo4YJseip1nM/gzitNCc3LX05AoGAQrsc
        7X74xD9mm/ao1CHHDyKV+5XdpcZjBudY8ibklDfZgBTNFo5GT38NvsERYmezY/AY
        J8Rcv8ITRmeBJn8e916AWg6IXhfeT+Lr+VStEPVq1KppRsqt95ZptH4Out0MP2EQ
        MRSurO47pXdMMXr4LeY/Q5EwD1QdSqw8lBFAOHMCgYBgBrP8r+LQOEISSbbk4KHz
        E0MRK7EdnTiwnas88zPhWGA9ului1Gf8nyAuCKD4R3CmNlVg0KIypEMEAscL2XOD
        VX0LkNGXedCqmACIzdC+pRlxBCjej8wl/dl4spynzIThSrMtIxchWepsahHytKrN
        0r6Z/vDAYoyXRPNX60S3Vg==
        -----END PRIVATE KEY-----
        """

    /// Its public key.
    static let rsa2048Public = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmmIdiAzTsGPHYjj6idK9
        ZM4nuiL52oGw6DwivNp5Ku5S/57ib9XceWacsAIjdEAlJGQMhPdLN8TCybnPY/BX
        QAa55Kt/hL0OKDlfN0ufCSOSFozwZiiDH+sd+snjI/A7RBeEXnCI960dFt9cIe1g
        ev2niu34r/304XhR+takTeMkjQLgMp7btmxd+pw5MKy/feQcucLba2HorGnetfpe
        0BgxlzH3jxQ/m1EYjj+MVmLk33oLX4JjFuQ0+6Bvlli4sK1LqgKDMwy+yf2pZ+UM
        hTGGhZy4NlnSHn+11wXNuU3axIYjWXrdlDbnFJjUpWbbbY3eofYeuWMMv4yCB9/K
        hwIDAQAB
        -----END PUBLIC KEY-----
        """

    /// An RSA 1024 key: too short for RS256.
    static let rsa1024 = """
        -----BEGIN PRIVATE KEY-----
        MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAOJw65u16GfCw9Uk
        SseIajDb5tahrG4tYnWYQxXirbYq+gKpnLRu8cPike3GUBBSG/57f3ipkCIz3YEy
        GDx5opvXVaXCPHm6nUZQyoy1V7Vt7FanbzgKhktPkQex8wXS4pNU31fkp9lD54ET
        sKhYf7ETcfrh6NsMjjqnog7PH6RhAgMBAAECgYAR/pc6kIIffMLDNVcb9CM8Lr1x
        YPeq6cBhR/BM1O6pA1FK1N+3FvnvbxnZo2DJazz+RCIlHJRvo19+3NRAOgpJ4dK2
        4otTPP6V4dH3S7NXsyT8HerK/fUvpmQYYn7CnTB9262/OTFxNFzGNewSX7d1zGAN
        vryoRi754jt32VbSAQJBAPenBnqYjAy+BWCV3RoHpW+pNprYZUWmbY9LSXZy4lCd
        QXwkccdCzFVN9nXvObfNpwg8gM9SzbAqBV5Jd+hkQbkCQQDqEt0nSTLfuVxx+5xz
        2+OhnslkupBGPffsIaAFqyTjP6oe8WqwbygscB/qU09gHR97yA00SWs0tf+/Dioh
        Y+vpAkBdmukM/4m36z7XEe3/P7KdMOUtw+sLV2uDxN4ggi3ecIHm7VOAEFRxTcWB
        MAmt2nJu34eEVXTfSBK9X6GN2g8pAkBcz/IE289iSltPjtbwUaYmtZFhcWA3meau
        KH8NAFl2Cg5oio0lPE4PoL3m6fW1RJbxO9eQffQWSHwJw5IM/1PRAkBmRmyRfkQg
        qEndEswmfhjCTNmLutddBfdYTqr/rVVrF5/aioZ84QFfXsNHMkX8w7XG+WpsmiAu
        MST8Bcn+9S4g
        -----END PRIVATE KEY-----
        """

    /// An Ed25519 key: neither EC nor RSA.
    static let ed25519 = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIEaDe8UnBOD4ioQg8A4GJF4NxQW1gzFP21iPGtpKplK0
        -----END PRIVATE KEY-----
        """

    /// A service-account file as the Firebase console downloads it, `private_key` being ``rsa2048`` (its newlines
    /// written `\n`, as in the real files).
    static let serviceAccount: String = {
        var writer = JSONWriter()
        writer.object { file in
            file.field("type", "service_account")
            file.field("project_id", "pushgw-test")
            file.field("private_key_id", "0123456789abcdef")
            file.field("private_key", rsa2048 + "\n")
            file.field("client_email", "notifier@pushgw-test.iam.gserviceaccount.com")
            file.field("client_id", "1234567890")
            file.field("auth_uri", "https://accounts.google.com/o/oauth2/auth")
            file.field("token_uri", "https://oauth2.googleapis.com/token")
        }
        return writer.string
    }()
}
