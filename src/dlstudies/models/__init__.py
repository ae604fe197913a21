"""Plain nn.Module architectures; each file holds one family, each YAML in conf/model/ picks one."""
