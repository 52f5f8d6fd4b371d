package symbolize

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemangle(t *testing.T) {
	for in, want := range map[string]string{
		"_ZN3nvs7Storage15clearNamespacesEv":              "nvs::Storage::clearNamespaces",
		"_ZL18nvs_find_ns_handlejR11HandleEntry":          "nvs_find_ns_handle",
		"_ZN3nvs4ItemC2EhNS_8ItemTypeEhPKch":              "nvs::Item::Item",
		"_ZN3nvs4PageD1Ev":                                "nvs::Page::~Page",
		"_ZN14intrusive_listI11HandleEntryE8iteratorppEv": "",
		"_ZNK3nvs4Page8getStateEv":                        "nvs::Page::getState",
		"_ZN12_GLOBAL__N_13fooEv":                         "(anonymous namespace)::foo",
		"_ZNSt9exceptionD2Ev":                             "std::exception::~exception",
		"_ZStplIcSt11char_traitsIcESaIcEE":                "",
		"_ZN3nvs7StorageaSERKS0_":                         "nvs::Storage::operator=",
		"_Z7nvs_setIjEijPKcT_":                            "",
		"app_main":                                        "",
		"_Z":                                              "",
		"_ZTV9bad_alloc":                                  "",
		"_ZN999999999999999999999999999999999999999999999999999999999E": "",
		"_ZN3nvsE":    "nvs",
		"_ZZ4mainE1x": "",
		"_ZN3fooC1Ev": "foo::foo",
	} {
		got, ok := Demangle(in)
		require.Equal(t, want != "", ok, in)
		require.Equal(t, want, got, in)
	}
}

func FuzzDemangle(f *testing.F) {
	f.Add("_ZN3nvs7Storage15clearNamespacesEv")
	f.Add("_ZL18nvs_find_ns_handlejR11HandleEntry")
	f.Add("_ZN3nvs4PageD1Ev")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Demangle(s)
		if ok && got == "" {
			t.Fatalf("ok with an empty name for %q", s)
		}
	})
}
