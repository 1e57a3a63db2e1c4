# A Debian node image with etcd-bootstrap baked in (qemu builder).
#   packer build -var iso_url=... -var iso_checksum=... images/packer/etcd-node.pkr.hcl
# Run `make static` first: the static binary is uploaded from target/.
variable "iso_url" {
  type    = string
  default = "https://cdimage.debian.org/cdimage/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
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
  description = "A seed naming the etcd release to pre-stage in the image (air-gapped first boot); empty: none."
}

source "qemu" "etcd-node" {
  iso_url          = var.iso_url
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
  vm_name          = "etcd-node.qcow2"
}

build {
  sources = ["source.qemu.etcd-node"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/etcd-bootstrap"]
  }

  provisioner "file" {
    sources = [
      "${var.repo}/target/x86_64-unknown-linux-musl/release/etcd-bootstrap",
      "${var.repo}/packaging/etcd-bootstrap.service",
      "${var.repo}/packaging/systemd/wg-quick-after-cloud-init.conf",
      "${var.repo}/packaging/sysusers.d/etcd-bootstrap.conf",
    ]
    destination = "/tmp/etcd-bootstrap/"
  }

  provisioner "shell" {
    execute_command = "sudo sh -c '{{ .Vars }} {{ .Path }}'"
    environment_vars = ["STAGE=/tmp/etcd-bootstrap"]
    script          = "${var.repo}/images/packer/provision.sh"
  }
}
