# A Debian node image with etcd-bootstrap baked in (qemu builder).
#   packer build -var iso_url=... -var iso_checksum=... images/packer/etcd-node.pkr.hcl
#   packer build -var arch=arm64 ... images/packer/etcd-node.pkr.hcl      # an arm64 image
# Run `make static` (or `make static ARCH=arm64`) first: the static binary is uploaded from target/.
variable "arch" {
  type        = string
  default     = "amd64"
  description = "The image's architecture: amd64 or arm64 (on any build host; arm64 runs under qemu TCG, with UEFI)."
  validation {
    condition     = contains(["amd64", "arm64"], var.arch)
    error_message = "The arch must be amd64 or arm64."
  }
}

variable "iso_url" {
  type        = string
  default     = ""
  description = "The base image; empty: Debian 12's genericcloud image for var.arch."
}

variable "arm64_firmware" {
  type        = string
  default     = "/usr/share/AAVMF/AAVMF_CODE.fd"
  description = "UEFI firmware for the arm64 virt machine (Debian: qemu-efi-aarch64)."
}

locals {
  # Debian and etcd name the architectures alike; Rust's musl targets do not.
  triple  = { amd64 = "x86_64-unknown-linux-musl", arm64 = "aarch64-unknown-linux-musl" }[var.arch]
  iso_url = var.iso_url != "" ? var.iso_url : "https://cdimage.debian.org/cdimage/cloud/bookworm/latest/debian-12-genericcloud-${var.arch}.qcow2"
  qemu = {
    amd64 = { binary = "qemu-system-x86_64", machine = "pc", args = [] }
    arm64 = {
      binary  = "qemu-system-aarch64"
      machine = "virt"
      args    = [["-cpu", "cortex-a57"], ["-bios", var.arm64_firmware]]
    }
  }[var.arch]
}

variable "iso_checksum" {
  type    = string
  default = "file:https://cdimage.debian.org/cdimage/cloud/bookworm/latest/SHA512SUMS"
}

variable "repo" {
  type    = string
  default = "."
}

variable "fetch_seed" {
  type        = string
  default     = ""
  description = "The text of a seed naming the etcd release to pre-stage in the image (air-gapped first boot), e.g. -var fetch_seed=\"$(cat fetch.yaml)\"; empty: none."
}

source "qemu" "etcd-node" {
  iso_url          = local.iso_url
  iso_checksum     = var.iso_checksum
  disk_image       = true
  format           = "qcow2"
  accelerator      = "tcg"
  headless         = true
  ssh_username     = "debian"
  ssh_password     = "packer"
  ssh_timeout      = "30m"
  shutdown_command = "sudo shutdown -P now"
  cd_files         = ["${var.repo}/images/cloud-init/packer-build/*"]
  cd_label         = "cidata"
  vm_name          = "etcd-node-${var.arch}.qcow2"
  qemu_binary      = local.qemu.binary
  machine_type     = local.qemu.machine
  qemuargs         = local.qemu.args
}

build {
  sources = ["source.qemu.etcd-node"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/etcd-bootstrap"]
  }

  provisioner "file" {
    sources = [
      "${var.repo}/target/${local.triple}/release/etcd-bootstrap",
      "${var.repo}/packaging/etcd-bootstrap.service",
      "${var.repo}/packaging/systemd/wg-quick-after-cloud-init.conf",
      "${var.repo}/packaging/sysusers.d/etcd-bootstrap.conf",
    ]
    destination = "/tmp/etcd-bootstrap/"
  }

  provisioner "shell" {
    environment_vars = ["FETCH_SEED=${var.fetch_seed}"]
    inline           = ["[ -z \"$FETCH_SEED\" ] || printf '%s\\n' \"$FETCH_SEED\" > /tmp/etcd-bootstrap/fetch-seed.yaml"]
  }

  provisioner "shell" {
    execute_command  = "sudo sh -c '{{ .Vars }} {{ .Path }}'"
    environment_vars = ["STAGE=/tmp/etcd-bootstrap", "ARCH=${var.arch}"]
    script           = "${var.repo}/images/packer/provision.sh"
  }
}
