package tui

import (
	"fmt"
	"testing"
)

func TestScratch(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Demo: true})
	fmt.Println(screenText(m))
	m2, _ := newTestModel(t, 120, 40, Config{Demo: true})
	fmt.Println(screenText(m2))
}
