"""Distillation: a teacher pass over unlabelled frames (``seem-ros label``) and a student trained
on what the teacher said (``seem-ros distill``)."""
