package serialflash

// UnsafeAlwaysCompress returns o set to compress every region without the
// padding that keeps the ROM's inflate window inside the region — what
// espdeck did before §13.1 was known. For showing the damage and for the
// cost-of-safety benchmark only.
func UnsafeAlwaysCompress(o Options) Options {
	o.unsafeAlwaysCompress = true
	return o
}
