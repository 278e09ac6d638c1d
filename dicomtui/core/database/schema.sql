-- dicomtui database schema, version 4 (older databases are migrated by code: database._MIGRATIONS).
-- Columns named like DICOM keywords hold that attribute (multi-values as DICOM text, "a\b\c");
-- snake_case columns are ours (keys, counts, file bookkeeping).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE patients (
    id               INTEGER PRIMARY KEY,
    PatientID        TEXT NOT NULL,
    name_key         TEXT NOT NULL,            -- PatientName without trailing '^' and spaces: part of identity
    PatientName      TEXT,
    PatientBirthDate TEXT,
    PatientSex       TEXT,
    generated_id     INTEGER NOT NULL DEFAULT 0,  -- 1 when the file had no PatientID and we made one
    num_studies      INTEGER NOT NULL DEFAULT 0,
    last_study_date  TEXT,
    UNIQUE (PatientID, name_key)
);

CREATE TABLE studies (
    id                     INTEGER PRIMARY KEY,
    StudyInstanceUID       TEXT NOT NULL UNIQUE,
    patient_fk             INTEGER NOT NULL REFERENCES patients (id),
    StudyDate              TEXT,
    StudyTime              TEXT,
    StudyDescription       TEXT,
    AccessionNumber        TEXT,
    ReferringPhysicianName TEXT,
    StudyID                TEXT,
    modalities             TEXT,                -- ModalitiesInStudy, from the series: "CT\MR"
    num_series             INTEGER NOT NULL DEFAULT 0,
    num_instances          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX studies_patient ON studies (patient_fk);
CREATE INDEX studies_date ON studies (StudyDate);

CREATE TABLE series (
    id                INTEGER PRIMARY KEY,
    SeriesInstanceUID TEXT NOT NULL UNIQUE,
    study_fk          INTEGER NOT NULL REFERENCES studies (id),
    SeriesNumber      INTEGER,
    Modality          TEXT,
    SeriesDescription TEXT,
    BodyPartExamined  TEXT,
    SeriesDate        TEXT,
    SeriesTime        TEXT,
    image_size        TEXT,                     -- "cols x rows" of its instances ("512x512"; several if mixed)
    num_instances     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX series_study ON series (study_fk);

CREATE TABLE instances (
    id                INTEGER PRIMARY KEY,
    SOPInstanceUID    TEXT NOT NULL UNIQUE,
    series_fk         INTEGER NOT NULL REFERENCES series (id),
    SOPClassUID       TEXT,
    InstanceNumber    INTEGER,
    TransferSyntaxUID TEXT,
    path              TEXT NOT NULL,            -- relative to the database folder when stored, else absolute
    stored            INTEGER NOT NULL,         -- 1: copied/received into storage (ours); 0: linked (never touched)
    file_size         INTEGER,
    file_mtime_ns     INTEGER,
    source_path       TEXT,                     -- where the import read it (equals path when linked)
    source_size       INTEGER,
    source_mtime_ns   INTEGER,
    imported_at       REAL,
    has_pixels        INTEGER NOT NULL DEFAULT 1,
    pixel_offset      INTEGER,                  -- byte offset of native Pixel Data, NULL if compressed/unknown
    frames            TEXT,                     -- multi-frame files: per-frame geometry as JSON (frames.py)
    refs              TEXT,                     -- derived objects: the series/instances they refer to (object_refs.py)
    -- what examine/load need, so that they never re-read headers
    ImagePositionPatient         TEXT,
    ImageOrientationPatient      TEXT,
    PixelSpacing                 TEXT,
    SliceThickness               REAL,
    Rows                         INTEGER,
    Columns                      INTEGER,
    NumberOfFrames               INTEGER,
    AcquisitionNumber            INTEGER,
    ImageType                    TEXT,
    SamplesPerPixel              INTEGER,
    PhotometricInterpretation    TEXT,
    PlanarConfiguration          INTEGER,
    BitsAllocated                INTEGER,
    BitsStored                   INTEGER,
    PixelRepresentation          INTEGER,
    RescaleSlope                 REAL,
    RescaleIntercept             REAL,
    WindowCenter                 TEXT,
    WindowWidth                  TEXT,
    ContentDate                  TEXT,
    ContentTime                  TEXT,
    AcquisitionTime              TEXT,
    TriggerTime                  REAL,
    TemporalPositionIdentifier   INTEGER,
    EchoTime                     REAL,
    DiffusionBValue              REAL,
    DiffusionGradientOrientation TEXT,
    FrameOfReferenceUID          TEXT,
    SpecificCharacterSet         TEXT
);
CREATE INDEX instances_series ON instances (series_fk);
CREATE INDEX instances_source ON instances (source_path);
CREATE INDEX instances_refs ON instances (series_fk) WHERE refs IS NOT NULL;  -- the few objects that refer
CREATE INDEX instances_stored_path ON instances (path) WHERE stored = 1;  -- "does a row still name this copy?"
