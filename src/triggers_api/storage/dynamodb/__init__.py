"""The AWS backend (issue 9), being built: today only its data model (:mod:`.schema`) and the
tool that creates or checks it (:mod:`.migrate`). Nothing selects this backend yet: there is no
``dynamodb://`` database URL until the storage Protocol is implemented here.
"""
