# ws02 is someone's desk: keep two physical cores (and their SMT siblings) free
# of HTCondor jobs for the person working there.
htcondor:
  slots:
    reserve_cores: 2
