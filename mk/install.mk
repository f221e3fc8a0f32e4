# install.mk — the shared library, `make install` / `make uninstall` (docs/install.md).
#   make install PREFIX=/usr/local [DESTDIR=/stage] [LIBDIR=...]
# Library objects are position independent and compiled with -fvisibility=hidden: only what
# include/easyrec.h declares (easyrec_*) is exported from libeasyrec.so. The CLI keeps linking
# libeasyrec.a statically.
CFLAGS   += -fPIC -fvisibility=hidden
VERSION  := $(shell sed -n 's/^\#define EASYREC_VERSION "\(.*\)"/\1/p' include/easyrec.h)
MAJOR    := $(shell sed -n 's/^\#define EASYREC_VERSION_MAJOR \([0-9]*\)/\1/p' include/easyrec.h)
SONAME   := libeasyrec.so.$(MAJOR)
SO       := $(BUILD)/libeasyrec.so.$(VERSION)
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
PCDIR    ?= $(LIBDIR)/pkgconfig
INSTALL  ?= install

.PHONY: install uninstall shared
shared: $(SO)
all: $(SO)
test: $(SO)

$(SO): $(LIB_OBJ) mk/libeasyrec.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=mk/libeasyrec.map -Wl,--no-undefined $(LDFLAGS) \
	  -o $@ $(LIB_OBJ) $(LDLIBS)
	ln -sf libeasyrec.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libeasyrec.so

$(BUILD)/easyrec.pc: mk/easyrec.pc.in include/easyrec.h mk/install.mk
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(sort $(PKGS))|' mk/easyrec.pc.in > $@

# always regenerated: PREFIX may differ between calls
.PHONY: $(BUILD)/easyrec.pc
install: $(BUILD)/easyrec $(SO) $(LIB) $(BUILD)/easyrec.pc
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(BUILD)/easyrec $(DESTDIR)$(BINDIR)/easyrec
	$(INSTALL) -m 755 $(SO) $(DESTDIR)$(LIBDIR)/libeasyrec.so.$(VERSION)
	ln -sf libeasyrec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libeasyrec.so
	$(INSTALL) -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libeasyrec.a
	$(INSTALL) -m 644 include/easyrec.h $(DESTDIR)$(INCDIR)/easyrec.h
	$(INSTALL) -m 644 $(BUILD)/easyrec.pc $(DESTDIR)$(PCDIR)/easyrec.pc
	$(INSTALL) -m 644 man/easyrec.1 $(DESTDIR)$(MANDIR)/man1/easyrec.1
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/share/easyrec/prompts
	$(INSTALL) -m 644 prompts/*.txt prompts/README.md $(DESTDIR)$(PREFIX)/share/easyrec/prompts/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/easyrec $(DESTDIR)$(LIBDIR)/libeasyrec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libeasyrec.so $(DESTDIR)$(LIBDIR)/libeasyrec.a $(DESTDIR)$(INCDIR)/easyrec.h \
	  $(DESTDIR)$(PCDIR)/easyrec.pc $(DESTDIR)$(MANDIR)/man1/easyrec.1
	rm -rf $(DESTDIR)$(PREFIX)/share/easyrec/prompts
