package ops

import (
	"fmt"
)

// AppSlot is where a new app goes when nobody named an address.
type AppSlot struct {
	Row PartitionRow
	// SwitchAfter is true when the slot is an OTA slot that must be made
	// to boot next once the app is written and verified.
	SwitchAfter bool
	// Why says why this slot was chosen, for the progress line and logs.
	Why string
}

// ChooseAppSlot picks the OTA slot for a new app: one that neither runs
// nor boots next, so the board keeps a known-good app until the new one is
// in place and selected. It never guesses: when every OTA slot runs or
// boots next, or otadata does not say which app runs, it refuses
// (ErrNoFreeSlot). A table without OTA slots has one app partition, the
// factory app, which a serial write replaces as a whole (the board is in
// its ROM loader, not running it).
func ChooseAppSlot(st *PartitionState) (AppSlot, error) {
	var ota []PartitionRow
	for _, r := range st.Rows {
		if r.App != nil && r.OTASlot >= 0 {
			ota = append(ota, r)
		}
	}
	if len(ota) == 0 {
		for _, r := range st.Rows {
			if r.App != nil {
				return AppSlot{Row: r, Why: fmt.Sprintf("the table has no OTA slots: %s is the only place for an app", r.Name)}, nil
			}
		}
		return AppSlot{}, fmt.Errorf("%w: the partition table has no app partition", ErrNoFreeSlot)
	}
	if st.OTAData == nil {
		return AppSlot{}, fmt.Errorf("%w: the table has OTA slots but no otadata partition, so none of them can be selected to boot", ErrNoFreeSlot)
	}
	if st.TableProblem != "" {
		return AppSlot{}, fmt.Errorf("%w: the partition table fails validation: %s", ErrNoFreeSlot, st.TableProblem)
	}
	if st.Running == "" {
		return AppSlot{}, fmt.Errorf("%w: otadata does not say which app runs (%s), so any slot could be the one the board depends on", ErrNoFreeSlot, st.RunningWhy)
	}
	for _, r := range ota {
		if r.Name != st.Running && r.Name != st.BootsNext {
			return AppSlot{Row: r, SwitchAfter: true,
				Why: fmt.Sprintf("%s neither runs (%s does) nor boots next (%s does)", r.Name, st.Running, orNone(st.BootsNext))}, nil
		}
	}
	return AppSlot{}, fmt.Errorf("%w: %s runs and %s boots next; every OTA slot is one of them", ErrNoFreeSlot, st.Running, orNone(st.BootsNext))
}
