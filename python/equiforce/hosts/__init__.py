"""Host integrations (ASE; LAMMPS and OpenMM plugins live in their own folders)."""
