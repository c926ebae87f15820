// Module tools pins what the tests need from outside the repository, so
// that it never enters the library's go.mod: the programs that
// ./scripts/test builds and starts (the local-kms AWS KMS emulator), and
// the Wycheproof test vectors that internal/testenv.Wycheproof locates with
// `go mod download -json` (listed through their vectorlint tool, so that
// go mod tidy keeps them).
module github.com/tokenkms/tokenkms/internal/tools

go 1.26

tool (
	github.com/c2sp/wycheproof/tools/vectorlint
	github.com/nsmithuk/local-kms
)

require (
	github.com/aws/aws-sdk-go v1.44.295 // indirect
	github.com/btcsuite/btcd/btcec/v2 v2.3.2 // indirect
	github.com/c2sp/wycheproof v0.0.0-20250901140545-b51abcfb8daf // indirect
	github.com/decred/dcrd/dcrec/secp256k1/v4 v4.1.0 // indirect
	github.com/gofrs/uuid v4.2.0+incompatible // indirect
	github.com/golang/snappy v0.0.4 // indirect
	github.com/jmespath/go-jmespath v0.4.0 // indirect
	github.com/konsorten/go-windows-terminal-sequences v1.0.2 // indirect
	github.com/nsmithuk/local-kms v0.0.0-20260228092603-2a5e92d09ab6 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.1 // indirect
	github.com/sirupsen/logrus v1.4.2 // indirect
	github.com/syndtr/goleveldb v1.0.1-0.20210819022825-2ae1ddf74ef7 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.14.0 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)

// The Wycheproof test vectors (internal/testenv.Wycheproof). The module's
// go.mod declares github.com/c2sp/wycheproof while the module proxy serves
// it as github.com/C2SP/wycheproof, hence the replace.
replace github.com/c2sp/wycheproof => github.com/C2SP/wycheproof v0.0.0-20250901140545-b51abcfb8daf
