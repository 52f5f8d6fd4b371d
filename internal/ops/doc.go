// Package ops is where espdeck decides, once, for the command line and the
// TUI alike. Each use case is one function with options, a context and a
// typed result:
//
//   - UploadOTA: pre-flight (the chip from --chip, the config's board or
//     the board's mDNS TXT; app vs filesystem; the signing policy), then
//     the ArduinoOTA upload. ResolvePassword applies the one password order
//     (PasswordSources documents it).
//   - WriteRegions and FlashSerial: serial writes checked against the chip,
//     its revision, the flash size and the partition each region lands in;
//     FlashSerial puts an app into the OTA slot that neither runs nor boots
//     next (ChooseAppSlot, which refuses rather than guesses) and selects it.
//     The result says per region what was written, skipped (already on
//     flash), compressed, resumed, and what the verify covered; serialflash
//     never writes a byte outside a region (window-safe compression).
//     VerifyRegions compares files with flash by MD5 and writes nothing.
//   - ReadRegion: a flash read cross-checked with the ROM's MD5, reported
//     as not verified when the check could not be made.
//   - ReadPartitionState; PlanSwitch/SwitchBootSlot, PlanErase/EraseOtadata,
//     PlanMark/MarkSlot: the plan functions make the confirmation sentence
//     (SlotChange.Question) both front ends ask, and the write functions
//     carry out exactly the plan. No slot write leaves otadata's real extent
//     or touches an app partition, whatever the table says and whatever
//     --force; a table that fails validation refuses them.
//   - UploadESPHome: the same pre-flight for ESPHome's native OTA, then
//     the upload; ResolveAPIKey applies the one API-key order
//     (APIKeySources documents it) for 'ota upload' and campaigns alike.
//   - Attempt and RecordAttempt: the audit record of one update outside
//     a campaign ('ota upload', 'serial write' of an app), the same shape
//     campaigns write, never holding a secret.
//   - StartPullServer: the HTTPS pull server of 'espdeck serve' and the
//     TUI's server pane (folder checked before a CA is made, one
//     certificate for every address, every download audited).
//   - BackupPartition; ReadInputFile and ReadSecretFile, which check a file
//     (regular, bounded size) before reading it whole.
//
// Every error a person can see answers Code() (a stable machine word, one
// of the Code constants) and Hint() (the next step); Classify gives errors
// of the protocol packages the same shape, and Class groups a protocol's own
// words (ESPHome's wrong_api_key is auth_failed). cmd/espdeck maps classes to
// exit statuses in one table; internal/tuibackend shows the same sentence
// and hint. The campaign engine (ops/campaign) builds on these use cases.
//
// ops is the only place where the protocol packages (espota, serialflash)
// and the firmware knowledge meet, so espota and serialflash never import
// each other.
package ops
