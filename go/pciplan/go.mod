module pciplan.dev/go/pciplan

go 1.19
